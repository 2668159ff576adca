"""Generation with continuous batching: concurrent requests share the model's forward passes.

Built on transformers' continuous-batching manager (a background thread that schedules every request
in flight into each forward pass); what is ours: an asyncio interface with token streaming, stop strings,
per-request sampling, `n` candidates, usage counts, and which path a request takes:

- on a CPU, each row of a batch is sampled by its own request (`serving/sampler.py`): greedy rows are an
  argmax and nothing more, and a seeded request draws from its own generator, so it is batched with the
  rest and gives the same answer alone or in a batch; a seed on a greedy request changes nothing and is
  ignored;
- on a CPU, a batch's attention is computed request by request (`serving/attention.py`), not as one product
  of all the step's tokens against all their keys;
- on a CPU, the model's float32 linear layers multiply with weights prepacked for oneDNN (`models/packed.py`,
  unless MODEL_PACKED_LINEAR=false): MKL's sgemm on the plain weights cost 1.2-5x as much per product here;
- a request that arrives when no other is in flight is generated with plain `generate` while the (empty)
  batch pauses: one sequence alone is faster that way than through the manager's paged cache;
- where the sampler cannot be installed (transformers' asynchronous batch processor, on a GPU), the manager
  samples with its shared processors, and a seeded sampled request is generated alone with plain
  `generate`, the batch paused.

Long because it is one engine with its three paths (batched, alone on the manager's thread, alone on a
thread of its own) and the streaming they share; the per-row sampler itself is in `serving/sampler.py`.

Torch work runs on as few long-lived threads as possible: on a CPU, each extra thread that keeps an OpenMP
team alive slows every forward pass (measured: 33 → 56 ms per token on 2 cores). One-off work (a seeded
request, a model load) therefore runs on a thread of its own that ends with it, never on a pooled thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llm_feedback_loop.models.loader import LoadedModel
from llm_feedback_loop.serving.sampler import RowSampling, manager_jobs, row_sampling


def post(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    """`callback(*args)` on `loop`, from another thread; nothing when the loop has closed (its awaiting
    coroutine is gone: a stream that stopped early, then its event loop ended)."""
    with contextlib.suppress(RuntimeError):  # "Event loop is closed"
        loop.call_soon_threadsafe(callback, *args)


def on_fresh_thread(function: Any, *args: Any) -> Any:
    """`function(*args)` on a new thread that ends when it returns, waited for here; its error is raised here.
    For torch work outside the event loop (loading the model at start): a thread that has run torch and stays
    alive keeps an OpenMP team, and then every forward pass of the manager's thread is slower (measured on
    SmolLM2, 2 cores: 64 tokens in 3.8 s instead of 2.3 s while the loading thread lived on)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function(*args)
        except BaseException as failure:
            outcome["error"] = failure

    worker = threading.Thread(target=run, name="llmfl-one-off", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def in_own_thread(function: Any, *args: Any) -> asyncio.Future[Any]:
    """Run `function(*args)` on a new thread that ends when it returns (see the module docstring)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, failure: BaseException | None) -> None:
        if done.done():
            return
        if failure is not None:
            done.set_exception(failure)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as failure:  # handed to the awaiting coroutine
            post(loop, settle, None, failure)
        else:
            post(loop, settle, result, None)

    threading.Thread(target=run, name="llmfl-one-off", daemon=True).start()
    return done


class GenerationError(RuntimeError):
    """Generation failed inside the engine."""


class BadPrompt(ValueError):
    """A request's conversation the model cannot take: a client error (400), never a server's."""


class PromptTooLong(BadPrompt):
    """The prompt plus the answer budget does not fit the model's context."""


class ConversationRefused(BadPrompt):
    """The model's chat template refuses the conversation (e.g. roles that do not alternate)."""


MIN_TEMPERATURE = 1e-5


@dataclass
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.8
    top_p: float = 0.95
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        # Dividing logits by a temperature this close to 0 overflows to inf, and sampling from the NaNs that
        # follow fails (or stalls the batch): such a temperature means greedy, as vLLM treats it.
        if self.temperature < MIN_TEMPERATURE:
            self.temperature = 0.0

    def for_choice(self, index: int) -> SamplingParams:
        """Parameters of the index-th of n answers: a seeded request seeds answer i with seed + i, so the
        n answers differ and each is reproducible."""
        if self.seed is None or index == 0:
            return self
        return SamplingParams(self.max_tokens, self.temperature, self.top_p, self.stop, self.seed + index)


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Delta:
    text: str
    finish_reason: str | None
    completion_tokens: int


class PromptsAndCompletions:
    """What every engine shares: prompts made with the model's tokenizer and chat template (so both engines see
    the same prompt), the context check, and a whole answer from `stream`. A subclass gives `tokenizer`,
    `context_length` and `stream`."""

    tokenizer: Any
    context_length: int

    def stream(self, input_ids: list[int], params: SamplingParams) -> AsyncIterator[Delta]:
        raise NotImplementedError

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        from jinja2 import TemplateError

        try:
            encoded = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=True
            )
        except TemplateError as error:  # the template's own check (raise_exception) or a conversation it cannot render
            raise ConversationRefused(f"the model's chat template refuses this conversation: {error}") from None
        return list(encoded["input_ids"])

    def encode_text(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    # A 1 MB prompt (the body limit) takes the tokenizer 1.4 s (measured: the tiny model's, 2 cores): on the event
    # loop that would stall every other request and stream. Tokenizing is no torch work, so a pooled thread is
    # fine (see the module docstring), and the fast tokenizer takes concurrent encodes (3000 across 16 threads).
    async def encode_chat_async(self, messages: list[dict[str, str]]) -> list[int]:
        """`encode_chat` off the event loop."""
        return await asyncio.to_thread(self.encode_chat, messages)

    async def encode_text_async(self, prompt: str) -> list[int]:
        """`encode_text` off the event loop."""
        return await asyncio.to_thread(self.encode_text, prompt)

    def check_fits(self, input_ids: list[int], max_tokens: int) -> None:
        limit = self.context_length
        if len(input_ids) + max_tokens > limit:
            raise PromptTooLong(
                f"the prompt has {len(input_ids)} tokens and max_tokens is {max_tokens}: together more than the "
                f"model's context of {limit} tokens; shorten the prompt or lower max_tokens"
            )

    async def complete(self, input_ids: list[int], params: SamplingParams) -> Completion:
        parts: list[str] = []
        finish, tokens = "length", 0
        async for delta in self.stream(input_ids, params):
            parts.append(delta.text)
            tokens = delta.completion_tokens
            if delta.finish_reason:
                finish = delta.finish_reason
        return Completion("".join(parts), finish, len(input_ids), tokens)


class GenerationEngine(PromptsAndCompletions):
    """One loaded model behind a continuous-batching manager."""

    def __init__(
        self, loaded: LoadedModel, *, num_blocks: int = 32, max_batch_tokens: int = 256, pack_linear: bool = True
    ) -> None:
        from transformers import ContinuousBatchingConfig, GenerationConfig

        from llm_feedback_loop.models.packed import pack_linear_layers
        from llm_feedback_loop.serving.sampler import install

        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.eos_ids = self._eos_ids()
        self.vocab_size = int(loaded.model.config.vocab_size)
        # On a CPU our sampler replaces the manager's (no processors of its own: do_sample off); elsewhere the
        # manager's processors exist only if its config samples, and each request sets its own values.
        self.per_row = str(getattr(loaded.model, "device", "cpu")).startswith("cpu")
        if self.per_row:  # each request's attention on its own keys only (serving/attention.py)
            from llm_feedback_loop.serving.attention import install as by_request_attention

            by_request_attention()
        # On a CPU, linear layers multiply with oneDNN-prepacked weights (models/packed.py): the engine owns this
        # model, which nothing trains or changes in place. Both paths (batched, alone) use them.
        self.packed_layers = pack_linear_layers(loaded.model) if self.per_row and pack_linear else 0
        generation_config = (
            GenerationConfig(do_sample=False, max_new_tokens=256, eos_token_id=self.eos_ids)
            if self.per_row
            else GenerationConfig(
                do_sample=True, temperature=0.7, top_p=0.9, top_k=50, max_new_tokens=256, eos_token_id=self.eos_ids
            )
        )
        batching = ContinuousBatchingConfig(
            num_blocks=num_blocks,  # the KV cache; the default sizes it from 60% of RAM on CPU
            max_batch_tokens=max_batch_tokens,
            per_request_processors=True,
            allow_block_sharing=False,  # prefix reuse would serve stale cache after weights change
        )
        self._manager = loaded.model.init_continuous_batching(
            generation_config=generation_config, continuous_batching_config=batching
        )
        self._rows: dict[str, RowSampling] = {}  # each batched request's sampling, by request id
        self._patched = install(self._manager, self._rows) if self.per_row else (lambda: False)
        self._jobs = manager_jobs(self._manager)
        self._alone_lock = threading.Lock()
        self.in_flight = 0
        self.stopped = False

    def _eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.loaded.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return sorted(i for i in ids if i is not None)

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the manager's thread; on a CPU, once its batch processor exists, check that it samples per row
        (a transformers release whose processor this layer does not know is refused, not served greedily)."""
        import time

        self._manager.start()
        if not self.per_row:
            return
        deadline = time.monotonic() + timeout_s
        while self._patched() is None and time.monotonic() < deadline and self._manager.is_running():
            time.sleep(0.01)
        if not self._patched():
            self._manager.stop(block=True, timeout=30)
            raise GenerationError(
                "the continuous-batching manager of this transformers release did not take the per-row sampler "
                "(llm_feedback_loop.serving.sampler); install the transformers version pyproject.toml names"
            )

    def stop(self) -> None:
        self.stopped = True
        self._manager.stop(block=True, timeout=30)
        while True:  # work handed to the manager's thread that it never ran: run it here, not leave it waiting
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job()

    @property
    def context_length(self) -> int:
        return self.loaded.context_length

    # ---- generation ----------------------------------------------------------------------------------------
    async def stream(self, input_ids: list[int], params: SamplingParams) -> AsyncIterator[Delta]:
        """Text as it is generated; the last delta carries the finish reason."""
        self.check_fits(input_ids, params.max_tokens)
        if self.stopped:  # nothing would ever answer (the model slot's leases keep this from happening)
            raise GenerationError("this model has been stopped; send the request again")
        self.in_flight += 1
        try:
            async for delta in self._path(params)(input_ids, params):
                yield delta
        finally:
            self.in_flight -= 1

    def _path(self, params: SamplingParams) -> Any:
        """How this request is generated (see the module docstring)."""
        seeded = params.seed is not None and params.temperature > 0  # a seed changes a sampled answer only
        if not self.per_row:
            return self._stream_alone if seeded else self._stream_batched
        if self.in_flight == 1 and not seeded:  # alone: plain generate is the faster path
            return self._stream_alone
        return self._stream_batched

    async def _stream_batched(self, input_ids: list[int], params: SamplingParams) -> AsyncIterator[Delta]:
        request_id = f"req-{uuid.uuid4().hex}"
        outputs: asyncio.Queue[Any] = asyncio.Queue()
        self._manager.register_result_handler(request_id, outputs.put_nowait)  # before add_request: no race
        sampling: dict[str, Any] = {}
        if self.per_row:  # our sampler reads it by request id
            self._rows[request_id] = row_sampling(float(params.temperature), float(params.top_p), params.seed)
        elif params.temperature <= 0:
            sampling = {"top_k": 1}  # greedy
        else:  # top_k: the batch's top-k filter takes 0 as "keep 1"; the whole vocabulary means no filter
            sampling = {"temperature": float(params.temperature), "top_p": float(params.top_p)}
            sampling["top_k"] = self.vocab_size
        self._manager.add_request(
            input_ids,
            request_id=request_id,
            max_new_tokens=params.max_tokens,
            streaming=True,
            eos_token_id=self.eos_ids,
            **sampling,
        )
        text = StreamText(self.tokenizer, params.stop)
        seen, finished = 0, False
        try:
            while True:
                output = await outputs.get()
                if output.error:
                    finished = True
                    raise GenerationError(str(output.error))
                new_tokens = output.generated_tokens[seen:]
                seen = len(output.generated_tokens)
                ready, stopped = text.add(new_tokens)
                if stopped:
                    yield Delta(ready, "stop", seen)
                    return
                if output.is_finished():
                    finished = True
                    yield Delta(ready + text.rest(), self._finish_reason(output.generated_tokens), seen)
                    return
                if ready:
                    yield Delta(ready, None, seen)
        finally:
            if not finished:  # stopped early, cancelled or disconnected: free the slot
                self._manager.cancel_request(request_id)
                with self._manager.output_router._lock:
                    self._manager.output_router.result_handlers.pop(request_id, None)
            self._rows.pop(request_id, None)

    async def _stream_alone(self, input_ids: list[int], params: SamplingParams) -> AsyncIterator[Delta]:
        """`generate` on this request alone, with the batch paused; tokens stream through a queue. (A request that
        arrives meanwhile waits for it: the batch resumes when it ends.)"""
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int | None] = asyncio.Queue()
        halt = threading.Event()
        # On a CPU, on the manager's own thread, between two of its steps: another thread running the model beside
        # the manager's resident one (and its OpenMP team) made plain generate 1.7x slower (measured, SmolLM2).
        run = self._on_manager_thread if self.per_row else in_own_thread
        worker = run(self._generate_alone, input_ids, params, loop, tokens.put_nowait, halt, not self.per_row)
        text = StreamText(self.tokenizer, params.stop)
        generated: list[int] = []
        try:
            while (token := await tokens.get()) is not None:
                generated.append(token)
                ready, stopped = text.add([token])
                if stopped:
                    yield Delta(ready, "stop", len(generated))
                    return
                if ready:
                    yield Delta(ready, None, len(generated))
            await worker  # raises what generate raised
            yield Delta(text.rest(), self._finish_reason(generated), len(generated))
        finally:
            halt.set()  # a stop string, a cancelled request or a closed stream ends generate at the next token

    def _generate_alone(
        self,
        input_ids: list[int],
        params: SamplingParams,
        loop: asyncio.AbstractEventLoop,
        emit: Any,
        halt: threading.Event,
        pause: bool = True,
    ) -> None:
        """Plain `generate` on one request, its tokens handed to `emit`; `pause`: from a thread of its own, with
        the batch paused (on the manager's thread the batch is not stepping anyway)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        class Emit(BaseStreamer):
            prompt_seen = False

            def put(self, value: torch.Tensor) -> None:
                if not self.prompt_seen:  # generate hands the prompt over first
                    self.prompt_seen = True
                    return
                for token in value.reshape(-1).tolist():
                    post(loop, emit, token)

            def end(self) -> None:
                pass

        class Halt(StoppingCriteria):
            def __call__(self, ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
                return torch.full((ids.shape[0],), halt.is_set(), dtype=torch.bool, device=ids.device)

        sampling: dict[str, Any] = (
            {"do_sample": False}
            if params.temperature <= 0
            else {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
        )
        try:
            with self._alone_lock, self._manager.pause() if pause else contextlib.nullcontext():
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                inputs = torch.tensor([input_ids], device=self.loaded.device)
                with torch.no_grad():
                    self.loaded.model.generate(
                        input_ids=inputs,
                        attention_mask=torch.ones_like(inputs),
                        max_new_tokens=params.max_tokens,
                        eos_token_id=self.eos_ids,
                        pad_token_id=self.tokenizer.pad_token_id,
                        streamer=Emit(),
                        stopping_criteria=StoppingCriteriaList([Halt()]),
                        **sampling,
                    )
        finally:
            post(loop, emit, None)  # the end, also after an error

    def _on_manager_thread(self, function: Any, *args: Any) -> asyncio.Future[Any]:
        """Run `function(*args)` on the manager's thread before its next step (`manager_jobs`); its result or
        error settles the returned future."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, failure: BaseException | None) -> None:
            if not done.done():
                done.set_exception(failure) if failure is not None else done.set_result(result)

        def job() -> None:
            try:
                result = function(*args)
            except BaseException as failure:  # handed to the awaiting coroutine, never to the manager's loop
                post(loop, settle, None, failure)
            else:
                post(loop, settle, result, None)

        self._jobs.put(job)
        self._manager._wake_up_loop.set()  # an idle loop waits up to 0.1 s for work otherwise
        return done

    def _finish_reason(self, generated: list[int]) -> str:
        return "stop" if generated and generated[-1] in self.eos_ids else "length"


class StreamText:
    """Token ids → text, holding back the end that may begin a stop string."""

    def __init__(self, tokenizer: Any, stops: list[str]) -> None:
        from tokenizers.decoders import DecodeStream

        self._decoder = DecodeStream(skip_special_tokens=True)
        self._tokenizer = tokenizer._tokenizer
        self._stops = stops
        self._held = ""

    def add(self, token_ids: list[int]) -> tuple[str, bool]:
        """(text ready to send, whether a stop string was reached: then the text ends before it)."""
        self._held += "".join(s for t in token_ids if (s := self._decoder.step(self._tokenizer, t)))
        cut = cut_at_stop(self._held, self._stops)
        if cut is not None:
            self._held = ""
            return cut, True
        keep = stop_prefix_length(self._held, self._stops)
        ready, self._held = self._held[: len(self._held) - keep], self._held[len(self._held) - keep :]
        return ready, False

    def rest(self) -> str:
        rest, self._held = self._held, ""
        return rest


def cut_at_stop(text: str, stops: list[str]) -> str | None:
    """`text` up to the first stop string, or None if it holds none."""
    positions = [position for stop in stops if stop and (position := text.find(stop)) >= 0]
    return text[: min(positions)] if positions else None


def stop_prefix_length(text: str, stops: list[str]) -> int:
    """How many characters at the end of `text` could begin a stop string: they are held back until
    the next tokens tell, so a stop string is never partly streamed."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
