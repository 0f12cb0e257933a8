"""The demo server's settings (``perfkit serve-demo`` flags), validated in one place."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from perfkit.errors import UsageError


@dataclass
class DemoOptions:
    """Everything ``create_app`` needs; field names mirror the command-line flags."""

    host: str = "127.0.0.1"
    port: int = 8000
    allow_remote: bool = False
    batching: str = "dynamic"
    max_batch: int = 16
    batch_timeout_ms: float = 5.0
    fixed_wait_ms: float | None = None  # default: 10 x batch_timeout_ms
    max_queue: int = 1024
    stall: tuple[float, float] | None = None  # (every_s, for_s)
    error_rate: float = 0.0
    slowdown: float = 1.0  # each inference request's handling takes this many times as long (real work)
    seed: int = 0
    model_name: str = "digits"
    model_hidden: tuple[int, ...] = (512, 512)
    model_variant: str = ""  # a variant built by ``perfkit optimize`` (empty: the FP32 model)
    threads: int = 1
    llm_batching: str = "continuous"
    llm_max_batch: int = 8
    llm_hidden: int = 3072
    llm_max_tokens: int = 512
    llm_model_name: str = "perfkit-char-lm"
    llm_max_waiting: int = 256
    require_token_env: str | None = None  # the variable holding the access token
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fixed_wait_s(self) -> float:
        wait_ms = self.fixed_wait_ms if self.fixed_wait_ms is not None else 10 * self.batch_timeout_ms
        return wait_ms / 1000.0

    def token(self) -> str | None:
        """The access token every request but ``/health`` must carry (None: open server)."""
        if self.require_token_env is None:
            return None
        return os.environ.get(self.require_token_env) or None

    def validate(self) -> "DemoOptions":
        """Raise UsageError (one line, exit 2) on an impossible combination."""
        if self.require_token_env is not None and self.token() is None:
            raise UsageError(f"--require-token-env {self.require_token_env}: that environment "
                             "variable is not set or empty; export the token in it first")
        if not self.allow_remote and not is_loopback(self.host):
            raise UsageError(f"--host {self.host}: not a loopback address; the demo server "
                             "binds loopback only unless --allow-remote is given")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port {self.port}: must be within 0..65535")
        if self.batching not in ("dynamic", "fixed", "none"):
            raise UsageError(f"--batching {self.batching}: expected dynamic, fixed or none")
        if self.llm_batching not in ("continuous", "static"):
            raise UsageError(f"--llm-batching {self.llm_batching}: expected continuous or static")
        for flag, value, low in (("--max-batch", self.max_batch, 1),
                                 ("--max-queue", self.max_queue, 1),
                                 ("--threads", self.threads, 1),
                                 ("--llm-max-batch", self.llm_max_batch, 1),
                                 ("--llm-hidden", self.llm_hidden, 8),
                                 ("--llm-max-tokens", self.llm_max_tokens, 1),
                                 ("--llm-max-waiting", self.llm_max_waiting, 1)):
            if value < low:
                raise UsageError(f"{flag} {value}: must be at least {low}")
        if not self.batch_timeout_ms >= 0:
            raise UsageError(f"--batch-timeout-ms {self.batch_timeout_ms}: must be >= 0")
        if self.fixed_wait_ms is not None and not self.fixed_wait_ms >= 0:
            raise UsageError(f"--fixed-wait-ms {self.fixed_wait_ms}: must be >= 0")
        if not 1.0 <= self.slowdown <= 100.0:
            raise UsageError(f"--slowdown {self.slowdown}: a factor within 1..100 (1: no slowdown)")
        if not 0.0 <= self.error_rate <= 1.0:
            raise UsageError(f"--error-rate {self.error_rate}: must be a fraction within 0..1")
        if not self.model_hidden or any(h < 1 for h in self.model_hidden):
            raise UsageError(f"--model-hidden {self.model_hidden}: positive layer widths")
        return self

    def public(self) -> dict[str, Any]:
        """The settings as plain JSON (served at ``GET /demo/config``)."""
        data = asdict(self)
        data.pop("extra")
        data["fixed_wait_ms"] = self.fixed_wait_s * 1000.0
        data["stall"] = (None if self.stall is None
                         else {"every_s": self.stall[0], "for_s": self.stall[1]})
        data["model_hidden"] = list(self.model_hidden)
        return data


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPv4/IPv6 literals."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
