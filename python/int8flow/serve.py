"""Ray Serve for int8flow models, speaking TensorFlow Serving's REST API.

    import int8flow.serve, ray
    from ray import serve
    ray.init()
    serve.start(http_options={"host": "127.0.0.1", "port": 8501})
    serve.run(int8flow.serve.app({"resnet": "saved_resnet_int8", "bert": "saved_bert_int8"}))

TensorFlow Serving cannot load a PluggableDevice (docs/serving.md), so this
is the endpoint for int8flow models: `POST /v1/models/<name>:predict` with
`instances` (row format) or `inputs` (columnar) answers `predictions` or
`outputs`, and `GET /v1/models/<name>` the model's status, as TF Serving's
REST API does, so a TF Serving client switches unchanged. Each replica runs
on QCPU with `num_cpus` cores (Ray's OMP_NUM_THREADS, int8flow's thread
rule), holds up to `max_models_per_replica` models (Ray Serve's model
multiplexing: requests for a model go to a replica that has it loaded), and
batches concurrent requests (`@serve.batch`). A bad request is a 4xx with
TF Serving's `{"error": ...}`, never a dead replica.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from int8flow.saved_model_runner import SavedModelRunner

MODEL_NAME = r"[^/:]+"  # a path segment without the ':predict' verb
# [/<route prefix>]/v1/models/<name>[/versions/<n>][:predict]: the app may be mounted under a prefix
MODEL_ROUTE = re.compile(rf"/v1/models/(?P<name>{MODEL_NAME})(?:/versions/(?P<version>\d+))?(?P<predict>:predict)?$")


class BadRequest(ValueError):
    """A request the model cannot answer: a 400 with this message."""


def parse_predict_request(body: Any, input_names: Sequence[str]) -> tuple[dict[str, Any], bool]:
    """A TF Serving predict body as each input's values (by name), and whether
    it came in row format (`instances`, answered with `predictions`)."""
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise BadRequest("the body must be a JSON object with exactly one of 'instances' (row format) or "
                         "'inputs' (columnar)")
    if body.get("signature_name", "serving_default") != "serving_default":
        raise BadRequest(f"signature_name {body['signature_name']!r}: this app serves 'serving_default' only")
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest("'instances' must be a non-empty list")
        if all(isinstance(r, dict) for r in rows):
            missing = sorted({n for r in rows for n in input_names if n not in r})
            if missing:
                raise BadRequest(f"instances lack inputs {missing}; the model's inputs are {list(input_names)}")
            return {n: [r[n] for r in rows] for n in input_names}, True
        return _single_input(rows, input_names), True
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        if sorted(inputs) != sorted(input_names):
            raise BadRequest(f"'inputs' names {sorted(inputs)}; the model's inputs are {list(input_names)}")
        return dict(inputs), False
    return _single_input(inputs, input_names), False


def _single_input(values: Any, input_names: Sequence[str]) -> dict[str, Any]:
    if len(input_names) != 1:
        raise BadRequest(f"the model has inputs {list(input_names)}: name each one")
    return {input_names[0]: values}


def predict_response(outputs: np.ndarray | dict[str, np.ndarray], row_format: bool) -> dict[str, Any]:
    """TF Serving's answer: `predictions` (one per instance; a dict per instance
    for several outputs) for row format, else `outputs`."""
    if not row_format:
        return {"outputs": outputs.tolist() if isinstance(outputs, np.ndarray)
                else {k: v.tolist() for k, v in outputs.items()}}
    if isinstance(outputs, np.ndarray):
        return {"predictions": outputs.tolist()}
    count = len(next(iter(outputs.values())))
    return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(count)]}


def model_status() -> dict[str, Any]:
    """TF Serving's `GET /v1/models/<name>` answer for a model this app serves."""
    return {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}


def app(models: Mapping[str, str | os.PathLike[str]], *, num_cpus: float = 1, replicas: int = 1,
        max_models_per_replica: int = 3, max_batch_size: int = 32, batch_wait_timeout_s: float = 0.005,
        env: Mapping[str, str] | None = None) -> Any:
    """The Ray Serve application (for `serve.run`, under any `route_prefix`)
    serving each SavedModel of `models` (name: folder; FP32, or
    `int8flow.quantize`'s output) by its name. `env`: environment variables of
    each replica's process, set before it imports TensorFlow (e.g.
    `INT8FLOW_QUANTIZE=dynamic`, or `INT8FLOW_DISABLE=1` for stock TF)."""
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    class TFServingJSON(JSONResponse):
        # TF Serving writes a NaN or infinite output as NaN / Infinity; Starlette's JSON refuses them.
        def render(self, content: Any) -> bytes:
            return json.dumps(content, separators=(",", ":")).encode()

    paths = {name: os.fspath(path) for name, path in models.items()}
    if not paths:
        raise ValueError("no models to serve")
    bad = [n for n in paths if not re.fullmatch(MODEL_NAME, n)]
    if bad:
        raise ValueError(f"model names may not hold '/' or ':': {bad}")

    options: dict[str, Any] = {"num_cpus": num_cpus}
    if env:
        options["runtime_env"] = {"env_vars": dict(env)}

    @serve.deployment(num_replicas=replicas, ray_actor_options=options)
    class ModelReplica:
        @serve.multiplexed(max_num_models_per_replica=max_models_per_replica)
        async def model(self, name: str) -> SavedModelRunner:
            return SavedModelRunner(paths[name], "serving_default", None, None, named_inputs=True)

        def runtime(self) -> dict[str, Any]:
            """What this replica runs on: whether QCPU is active (and why not), its threads."""
            import tensorflow  # noqa: F401  (loads the plugin, as the first model would)

            import int8flow

            state, cpu = int8flow.load_state(), int8flow.cpu_features()
            return {"qcpu_active": bool(state["active"]), "reason": state["reason"], "pid": os.getpid(),
                    "threads": cpu["threads"], "threads_rule": cpu["threads_rule"]}

        async def predict(self, body: Any) -> dict[str, Any]:
            name = serve.get_multiplexed_model_id()
            runner = await self.model(name)
            columns, row_format = parse_predict_request(body, runner.inputs)
            try:
                arrays = [np.asarray(columns[n]) for n in runner.inputs]
            except ValueError as e:  # ragged lists
                raise BadRequest(f"an input is not a regular array: {e}") from e
            result = await self.run_batched((name, arrays))
            if isinstance(result, Exception):
                raise result
            return predict_response(result, row_format)

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s)
        async def run_batched(self, requests: list[tuple[str, list[np.ndarray]]]) -> list[Any]:
            # One call per model and input shape; a group that fails answers
            # its own requests with the error, the others still run.
            groups: dict[tuple[Any, ...], list[int]] = {}
            for i, (name, arrays) in enumerate(requests):
                key = (name, *((a.shape[1:], a.dtype.str) for a in arrays))
                groups.setdefault(key, []).append(i)
            results: list[Any] = [None] * len(requests)
            for key, members in groups.items():
                runner = await self.model(key[0])
                try:
                    joined = [np.concatenate([requests[i][1][k] for i in members]) for k in range(len(runner.inputs))]
                    outputs = runner(*joined)
                except Exception as e:  # a TF error for a wrong shape or dtype, a ValueError
                    for i in members:
                        results[i] = BadRequest(str(e).strip().splitlines()[0] if str(e).strip() else repr(e))
                    continue
                ends = np.cumsum([len(requests[i][1][0]) for i in members])
                for i, start, end in zip(members, np.concatenate([[0], ends[:-1]]), ends):
                    results[i] = (outputs[start:end] if isinstance(outputs, np.ndarray)
                                  else {k: v[start:end] for k, v in outputs.items()})
            return results

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class TFServingAPI:
        def __init__(self, replica: Any) -> None:
            self._replica = replica

        async def runtime(self) -> dict[str, Any]:
            """A model replica's `runtime()` (through the app's handle: not an HTTP route)."""
            return await self._replica.runtime.remote()

        async def __call__(self, request: Request) -> TFServingJSON:
            route = MODEL_ROUTE.search(request.url.path)
            if route is None:
                return _error(404, f"no route {request.url.path}: use /v1/models/<name> or /v1/models/<name>:predict")
            name = route["name"]
            if name not in paths:
                return _error(404, f"Servable not found for request: model {name!r}; serving {sorted(paths)}")
            if route["predict"] is None:
                return TFServingJSON(model_status()) if request.method == "GET" else _error(405, "use GET")
            if request.method != "POST":
                return _error(405, "use POST for :predict")
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "the body is not JSON")
            try:
                return TFServingJSON(await self._replica.options(multiplexed_model_id=name).predict.remote(body))
            except BadRequest as e:  # Ray raises the replica's error as an instance of its class
                return _error(400, str(getattr(e, "cause", e)))

    def _error(status: int, message: str) -> TFServingJSON:
        return TFServingJSON({"error": message}, status_code=status)

    # serve.deployment makes each class a Deployment, which its stubs do not say.
    return cast(Any, TFServingAPI).bind(cast(Any, ModelReplica).bind())
