"""The embedded demo inference service: real models behind HTTP, with batching and fault knobs.

``perfkit serve-demo`` (see ``--help``) serves

- a digits MLP classifier in onnxruntime (:mod:`perfkit.demo.model`) at
  ``POST /api/v1/infer`` and KServe v2 ``/v2/models/digits/infer``, batched by
  :mod:`perfkit.demo.batcher` (``--batching dynamic|fixed|none``);
- a character-level echo-state language model (:mod:`perfkit.demo.charlm`) behind an
  OpenAI-compatible API (:mod:`perfkit.demo.openai_api`), decoded by
  :mod:`perfkit.demo.llm` with continuous or static batching;
- Prometheus metrics at ``/metrics`` (:mod:`perfkit.demo.metrics`);
- fault knobs (:mod:`perfkit.demo.faults`): ``--stall``, ``--error-rate``, ``--max-queue``.

Tests and tools start it with :class:`perfkit.demo.launch.DemoServer`.
Models are built reproducibly on first use and cached (:mod:`perfkit.demo.cache`).
"""
