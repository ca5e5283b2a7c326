print("crash tester")
