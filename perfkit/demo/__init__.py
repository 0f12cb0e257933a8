"""The embedded demo inference service: a real ONNX model behind HTTP, with batching and fault knobs."""
