/// Three integers for the (D, H, W) axes: a kernel size, stride, dilation or one side of padding.
///
/// Written as one integer (`2` means `[2, 2, 2]`) or three (`[1, 2, 2]`).
public struct Size3: Hashable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral
{
    public var d: Int, h: Int, w: Int

    public init(_ d: Int, _ h: Int, _ w: Int) { self.d = d; self.h = h; self.w = w }
    public init(_ all: Int) { self.init(all, all, all) }
    public init(integerLiteral value: Int) { self.init(value) }
    /// Takes one element (all axes) or three (D, H, W). Other counts are a programming error.
    public init(arrayLiteral elements: Int...) {
        precondition(elements.count == 1 || elements.count == 3, "Size3 takes one or three integers")
        self = elements.count == 1 ? Size3(elements[0]) : Size3(elements[0], elements[1], elements[2])
    }
    /// From an array of one or three integers (as read from a model file); nil otherwise.
    public init?(_ values: [Int]) {
        switch values.count {
        case 1: self.init(values[0])
        case 3: self.init(values[0], values[1], values[2])
        default: return nil
        }
    }

    public var array: [Int] { [d, h, w] }
    public var product: Int { d * h * w }
    public var description: String { d == h && h == w ? "\(d)" : "[\(d), \(h), \(w)]" }
}

/// Padding of a 3D window op: voxels added before and after each spatial axis.
///
/// Symmetric padding is one `Size3`; asymmetric padding (as ONNX `pads` or `SAME_UPPER` give) has
/// separate `begin` and `end`.
public struct Padding3: Hashable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral
{
    public var begin: Size3, end: Size3

    public init(begin: Size3, end: Size3) { self.begin = begin; self.end = end }
    public init(_ both: Size3) { self.init(begin: both, end: both) }
    public init(integerLiteral value: Int) { self.init(Size3(value)) }
    public init(arrayLiteral elements: Int...) {
        precondition(elements.count == 1 || elements.count == 3 || elements.count == 6,
                     "Padding3 takes one, three or six integers")
        switch elements.count {
        case 6:  // ONNX order: begins then ends.
            self.init(begin: Size3(elements[0], elements[1], elements[2]),
                      end: Size3(elements[3], elements[4], elements[5]))
        default:
            self.init(Size3(elements.count == 1 ? [elements[0]] : elements)!)
        }
    }

    public var isSymmetric: Bool { begin == end }
    public var description: String { isSymmetric ? begin.description : "begin \(begin) end \(end)" }
}

/// An error raised by a tensor op on inputs it cannot take: mismatched shapes, bad parameters.
public struct TensorError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// A mismatch between two shapes, naming both.
    public static func shapeMismatch(_ op: String, _ a: [Int], _ b: [Int], _ why: String = "") -> TensorError {
        TensorError("\(op): shapes \(a) and \(b) do not match" + (why.isEmpty ? "" : " (\(why))"))
    }
}

/// Formats a shape as `[1, 16, 64, 64, 64]`.
@inlinable public func describe(shape: [Int]) -> String { "\(shape)" }
