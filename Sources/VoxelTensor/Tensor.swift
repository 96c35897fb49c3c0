/// A dense, contiguous, row-major Float32 tensor.
///
/// Volumes are `[N, C, D, H, W]` (W fastest), as in PyTorch and MONAI. Storage is a Swift array, so
/// copies are copy-on-write and memory is freed as soon as the last reference goes.
public struct Tensor: Sendable, Equatable {
    /// The extent of each axis, outermost first.
    public private(set) var shape: [Int]
    /// The elements, row-major. `scalars.count == shape.product`.
    public var scalars: [Float]

    /// A tensor over given elements; throws when their count does not fit the shape.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError("negative extent in shape \(shape)") }
        guard shape.product == scalars.count else {
            throw TensorError("\(scalars.count) values do not fill shape \(shape) (\(shape.product) elements)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor filled with one value.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.product)
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }

    /// A tensor whose elements are written by `initializer` into uninitialised storage.
    /// The closure must write every element.
    public init(shape: [Int], uninitialized initializer: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let count = shape.product
        self.shape = shape
        self.scalars = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try initializer(buffer)
            initialized = count
        }
    }

    /// A scalar tensor of shape `[]`.
    public init(scalar: Float) { shape = []; scalars = [scalar] }

    public var rank: Int { shape.count }
    public var count: Int { scalars.count }

    /// Row-major strides, in elements.
    public var strides: [Int] { Tensor.strides(for: shape) }

    public static func strides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = s
            s *= shape[axis]
        }
        return strides
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard newShape.product == count else {
            throw TensorError.shapeMismatch("reshape", shape, newShape, "element counts differ")
        }
        var copy = self
        copy.shape = newShape
        return copy
    }

    /// Element at a multi-index (slow; for tests and references).
    public subscript(index: [Int]) -> Float {
        get { scalars[offset(of: index)] }
        set { scalars[offset(of: index)] = newValue }
    }

    /// Element at a 5D index (slow; for tests and references).
    public subscript(n: Int, c: Int, d: Int, h: Int, w: Int) -> Float {
        get { scalars[offset(of: [n, c, d, h, w])] }
        set { scalars[offset(of: [n, c, d, h, w])] = newValue }
    }

    @usableFromInline func offset(of index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) does not fit shape \(shape)")
        var o = 0
        for (i, extent) in zip(index, shape) {
            precondition(i >= 0 && i < extent, "index \(index) out of bounds for shape \(shape)")
            o = o * extent + i
        }
        return o
    }

    /// Throws unless the tensor is 5D `[N, C, D, H, W]`.
    public func requireSpatial(_ op: String) throws {
        guard rank == 5 else {
            throw TensorError("\(op): expected a 5D tensor [N, C, D, H, W], got shape \(shape)")
        }
    }
}

extension Collection where Element == Int {
    /// The product of the extents (1 for an empty shape).
    @inlinable public var product: Int { reduce(1, *) }
}
