// What the harnesses share: libFuzzer's driver, and the input-derived split points at which an
// input is cut to check that a decoder gives the same outcome however its input arrives.

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Runs libFuzzer with the process's arguments, calling `callback` with each input.
@discardableResult
public func runLibFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}

/// Two cut points in `0...bytes.count`, in order, derived from the input (FNV-1a), so that a
/// finding reproduces from its input alone.
public func splitPoints(of bytes: some Collection<UInt8>) -> (lo: Int, hi: Int) {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    let n = UInt64(bytes.count + 1)
    let a = Int(h % n), b = Int((h >> 32) % n)
    return (min(a, b), max(a, b))
}
