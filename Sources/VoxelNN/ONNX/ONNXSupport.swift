// The operator types the ONNX importer supports, and the load-time check against that list.

extension ONNXModel {
    /// The operators the graph executor runs (default ONNX domain), by op type.
    public static let executedOperators: [String] = [
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "Softmax",
        "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax",
        "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Gemm", "MatMul",
        "Add", "Sub", "Mul", "Div", "Concat", "Pad", "Resize", "Dropout", "Identity", "Constant",
    ]

    /// Shape operators the importer folds into constants at load time (their inputs must be constant
    /// or depend only on static input shapes).
    public static let foldedOperators: [String] = ["Shape", "Gather", "Slice", "Cast", "ConstantOfShape", "Range"]

    /// Every operator type the importer accepts: `executedOperators` then `foldedOperators`.
    public static var supportedOperators: [String] { executedOperators + foldedOperators }

    /// Throws for the first node whose operator the importer does not support, naming the operator,
    /// the node and the supported list.
    ///
    /// Throws: `ModelError` of kind `.unsupportedOperator`.
    public func validateOperators() throws {
        let supported = Set(ONNXModel.supportedOperators)
        let unsupported = graph.nodes.filter { !supported.contains($0.opType) }
        guard let node = unsupported.first else { return }
        var others: [String] = []
        for n in unsupported where n.opType != node.opType && !others.contains(n.opType) { others.append(n.opType) }
        throw ModelError(fileName, .unsupportedOperator,
                         "node '\(node.name.isEmpty ? (node.outputs.first ?? "") : node.name)' uses operator \(node.opType),"
                         + " which is not supported"
                         + (others.isEmpty ? "" : " (nor are \(others.joined(separator: ", ")), also in this model)")
                         + "; supported operators: " + ONNXModel.supportedOperators.joined(separator: ", "))
    }
}
