import Testing
import VoxelTensor
import _TestSupport

@Suite struct TensorTests {
    @Test func shapeMismatchNamesBothShapes() throws {
        let t = Tensor.zeros([1, 2, 3, 4, 5])
        #expect(throws: TensorError.self) { try t.reshaped([7]) }
        do { _ = try t.reshaped([7]) } catch let e as TensorError {
            #expect(e.message.contains("[1, 2, 3, 4, 5]") && e.message.contains("[7]"))
        }
    }

    @Test func initRejectsWrongCount() {
        #expect(throws: TensorError.self) { try Tensor(shape: [2, 2], scalars: [1, 2, 3]) }
    }

    @Test func rowMajorIndexing() throws {
        var t = Tensor.zeros([1, 2, 2, 2, 3])
        t[0, 1, 1, 0, 2] = 5
        #expect(t.scalars[1 * 12 + 1 * 6 + 0 * 3 + 2] == 5)
        #expect(t.strides == [24, 12, 6, 3, 1])
    }

    @Test func size3Literals() {
        let a: Size3 = 2
        let b: Size3 = [1, 2, 3]
        #expect(a == Size3(2, 2, 2) && b.w == 3)
        let p: Padding3 = [0, 0, 0, 1, 1, 1]
        #expect(!p.isSymmetric && p.end == Size3(1))
    }
}
