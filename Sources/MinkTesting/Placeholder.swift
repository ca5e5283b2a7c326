import Mink
