/// An 8-bit RGBA colour.
public struct RGBA: Hashable, Sendable, CustomStringConvertible {
    /// Red, green, blue and alpha (255 opaque).
    public var r: UInt8, g: UInt8, b: UInt8, a: UInt8
    /// A colour from its channels (`a` 255, opaque, unless given).
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8 = 255) { self.r = r; self.g = g; self.b = b; self.a = a }
    /// A grey level (r = g = b = `level`), opaque.
    public init(grey level: UInt8) { self.init(level, level, level) }
    /// Opaque black.
    public static let black = RGBA(0, 0, 0)
    /// Opaque white.
    public static let white = RGBA(255, 255, 255)
    /// "(r, g, b, a)".
    public var description: String { "(\(r), \(g), \(b), \(a))" }
}

/// Why a picture could not be made or written, in one line naming the file or option.
public struct RenderError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The message, naming the file or option first.
    public var message: String
    /// An error with this one-line message.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// A raster image with 8-bit RGB or RGBA pixels, rows top to bottom, each row left to right.
///
/// Pixel `(x, y)` starts at byte `(y * width + x) * format.rawValue` of `pixels`.
public struct Image: Equatable, Sendable {
    /// Channels per pixel.
    public enum Format: Int, Sendable { case rgb = 3, rgba = 4 }
    /// Columns.
    public let width: Int
    /// Rows.
    public let height: Int
    /// RGB (3 bytes per pixel) or RGBA (4).
    public let format: Format
    /// `width * height * format.rawValue` bytes.
    public var pixels: [UInt8]

    /// Largest side accepted, in pixels (PNG allows 2^31 - 1; this keeps a sheet within memory).
    public static let maxSide = 32768

    /// An image filled with `fill`.
    /// - Throws: `RenderError` when a side is not in 1...`maxSide`.
    public init(width: Int, height: Int, format: Format = .rgb, fill: RGBA = .black) throws {
        guard (1...Image.maxSide).contains(width), (1...Image.maxSide).contains(height) else {
            throw RenderError("image size \(width)x\(height) is out of range (1 to \(Image.maxSide) pixels a side)")
        }
        self.width = width
        self.height = height
        self.format = format
        let n = format.rawValue
        var px = [UInt8](repeating: 0, count: width * height * n)
        let f = [fill.r, fill.g, fill.b, fill.a]
        if f[0...(n - 1)].contains(where: { $0 != 0 }) {
            for p in 0..<(width * height) { for c in 0..<n { px[p * n + c] = f[c] } }
        }
        pixels = px
    }

    /// The pixel at column `x`, row `y` (alpha 255 for RGB images); both must be inside the image.
    public subscript(x: Int, y: Int) -> RGBA {
        get {
            let o = (y * width + x) * format.rawValue
            return RGBA(pixels[o], pixels[o + 1], pixels[o + 2], format == .rgba ? pixels[o + 3] : 255)
        }
        set {
            let o = (y * width + x) * format.rawValue
            pixels[o] = newValue.r
            pixels[o + 1] = newValue.g
            pixels[o + 2] = newValue.b
            if format == .rgba { pixels[o + 3] = newValue.a }
        }
    }

    /// True when `(x, y)` lies inside the image.
    @inlinable public func contains(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height }

    /// Sets the pixel when it lies inside the image (drawing clips silently).
    public mutating func plot(_ x: Int, _ y: Int, _ c: RGBA) { if contains(x, y) { self[x, y] = c } }

    /// Fills the rectangle `[x, x + w) x [y, y + h)`, clipped to the image.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ c: RGBA) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 { for xx in x0..<x1 { self[xx, yy] = c } }
    }

    /// Copies `image` with its top-left corner at `(x, y)`, clipped to this image (alpha is copied, not blended).
    public mutating func draw(_ image: Image, x: Int, y: Int) {
        for yy in 0..<image.height where y + yy >= 0 && y + yy < height {
            for xx in 0..<image.width where x + xx >= 0 && x + xx < width {
                self[x + xx, y + yy] = image[xx, yy]
            }
        }
    }
}
