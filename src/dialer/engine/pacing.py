"""Pacing: how many new calls to place right now. Pure algorithms — numbers in, numbers out, no I/O.

Every pacer implements :class:`Pacer`. The runner (or the benchmark) calls :meth:`Pacer.decide` with an
:class:`Observation` of what a real dialer sees at that moment — its operators' states, its calls in progress and
the calls waiting for an operator — and reports what happens to the calls through the ``on_*`` callbacks, from which
a pacer builds whatever history it needs. A pacer never sees the traffic model (answer rates, talk-time
distributions...): it must learn what it needs from its own calls.

Algorithms (:data:`PACERS` maps their names to factories with the default setting):

* :class:`ProgressivePacer` — one call per free operator not already covered by a call in progress; an answered call
  always finds its operator, so nothing is ever abandoned (001, "progressive").
* :class:`PreviewPacer` — the same count; in preview mode each call waits for its operator to read the card.
* :class:`FixedLinesPacer` — keep N calls in progress ("Не ограничено", 002 §5.2.5).
* :class:`FixedRatioPacer` — a constant dial ratio: per free operator, per operator not in a conversation, or
  VICIdial's dial level (its RATIO dial method).
* :class:`VicidialAdaptPacer` — VICIdial's ADAPT_HARD_LIMIT controller (``bin/AST_VDadapt.pl``).
* :class:`PredictivePacer` — ours: a forecast of free operators against expected live answers, a per-call
  abandon-risk test and a feedback loop on the abandon budget. See its docstring for the formula.

Vocabulary: an *abandoned* call is a live answer that got no operator within ``abandon_after_s`` (2 s, the
regulatory definition); the *abandon rate* is abandoned / live answered.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

__all__ = [
    "PACERS",
    "DialResult",
    "FixedLinesPacer",
    "FixedRatioPacer",
    "Observation",
    "Pacer",
    "PacingHistory",
    "PredictivePacer",
    "PreviewPacer",
    "ProgressivePacer",
    "RatioBase",
    "VicidialAdaptPacer",
    "make_pacer",
]


class DialResult(StrEnum):
    """How a placed call ended its dialling phase, as the telephony layer reports it."""

    human = "human"  # a live answer: it needs an operator now
    machine = "machine"  # an answering machine, recognised and hung up without an operator
    busy = "busy"
    failed = "failed"
    rejected = "rejected"
    no_answer = "no_answer"  # the dialer's answer timeout expired


@dataclass(frozen=True, slots=True)
class Observation:
    """What the dialer sees when it decides; times are :meth:`Clock.now` readings (seconds).

    ``dialled_at`` holds the placement times of the calls in progress (dialling or ringing, not yet answered or
    ended), ``talk_started_at`` when each operator in a call was connected, ``wrap_up_started_at`` when each
    operator in wrap-up began it (the predictive pacer forecasts from them; the other pacers read only the counts).
    Operators who are paused or reserved count only in ``operators_logged_in``.
    """

    now: float
    operators_logged_in: int
    operators_ready: int
    operators_in_call: int
    operators_wrap_up: int
    calls_dialling: int
    calls_waiting: int
    dialled_at: Collection[float] = ()
    talk_started_at: Collection[float] = ()
    wrap_up_started_at: Collection[float] = ()


class Pacer(ABC):
    """A pacing algorithm. One instance paces one campaign; it keeps its own history.

    Contract: :meth:`decide` returns how many new calls to place now (>= 0); the caller places them at once and
    includes them in the next observation's ``calls_dialling``. Call it whenever the state changes (an operator
    becomes ready, a call ends its dialling phase) and on a steady tick (1 s) in between. The callbacks report, in
    time order, each placed call's dialling result, each abandon, and the end of each talk and wrap-up.
    """

    name: ClassVar[str]

    @abstractmethod
    def decide(self, obs: Observation) -> int:
        """How many new calls to place now."""

    def on_call_result(self, placed_at: float, outcome: DialResult, ring_s: float) -> None:
        """A call placed at ``placed_at`` ended its dialling phase ``ring_s`` seconds later with ``outcome``."""
        return None  # optional hook: a pacer that needs no history ignores it

    def on_abandon(self, at: float) -> None:
        """A live answer got no operator in time and was abandoned at ``at``."""
        return None  # optional hook: a pacer that needs no history ignores it

    def on_talk_ended(self, duration: float) -> None:
        """An operator finished a conversation of ``duration`` seconds (wrap-up starts)."""
        return None  # optional hook: a pacer that needs no history ignores it

    def on_wrap_up_ended(self, duration: float) -> None:
        """An operator finished a wrap-up of ``duration`` seconds (and is ready again)."""
        return None  # optional hook: a pacer that needs no history ignores it


def _uncovered_free(obs: Observation) -> int:
    # calls already dialling or waiting are each spoken for by one free operator
    return max(0, obs.operators_ready - obs.calls_dialling - obs.calls_waiting)


class ProgressivePacer(Pacer):
    """One call per free operator not already covered by a call in progress.

    ``n = max(0, ready - dialling - waiting)``. Operators only leave "ready" by taking a call, so every live
    answer finds a free operator: 0% abandoned by construction, at the price of operators waiting through every
    unanswered attempt.
    """

    name = "progressive"

    def decide(self, obs: Observation) -> int:
        return _uncovered_free(obs)


class PreviewPacer(ProgressivePacer):
    """Preview dialling paces like progressive: one call per free operator, placed once the operator has read the
    contact's card (the runner holds the call for the preview; the count is the same)."""

    name = "preview"


class FixedLinesPacer(Pacer):
    """Keep ``lines`` calls in progress (dialling or waiting for an operator), whatever the operators do."""

    name = "fixed_lines"

    def __init__(self, lines: int) -> None:
        if lines < 0:
            raise ValueError("lines must be >= 0")
        self.lines = lines

    def decide(self, obs: Observation) -> int:
        return max(0, self.lines - obs.calls_dialling - obs.calls_waiting)


def _vicidial_goal(level: float, obs: Observation) -> int:
    """VICIdial's line goal (``AST_VDauto_dial.pl``): ``goalcalls = round(level × active agents)`` where active
    agents are READY or INCALL (an agent in wrap-up is PAUSED for the disposition and does not count), minus the
    calls already up (SENT, RINGING, LIVE waiting, and XFER to an agent)."""
    goal = round(level * (obs.operators_ready + obs.operators_in_call))
    return max(0, goal - obs.calls_dialling - obs.calls_waiting - obs.operators_in_call)


class RatioBase(StrEnum):
    """What a fixed dial ratio multiplies."""

    free = "free"  # calls in flight (dialling or waiting) = ratio × free operators
    available = "available"  # calls in flight = ratio × operators not in a conversation (free or in wrap-up)
    dial_level = "dial_level"  # VICIdial: lines in use, conversations included = ratio × (free + in-call operators)


class FixedRatioPacer(Pacer):
    """A constant dial ratio. ``base`` says what it multiplies (:class:`RatioBase`):

    * ``free`` (default, the classic "calls per available agent"): keep ``round(ratio × ready)`` calls dialling or
      waiting for an operator; ratio 1 is progressive;
    * ``available``: the same over operators who are free or in wrap-up, i.e. about to be free;
    * ``dial_level``: VICIdial's RATIO dial method, ``round(ratio × (ready + in-call))`` lines in use counting the
      calls already connected; operators in wrap-up do not count.
    """

    name = "fixed_ratio"

    def __init__(self, ratio: float, base: RatioBase = RatioBase.free) -> None:
        if ratio < 0:
            raise ValueError("ratio must be >= 0")
        self.ratio = ratio
        self.base = RatioBase(base)

    def decide(self, obs: Observation) -> int:
        if self.base is RatioBase.dial_level:
            return _vicidial_goal(self.ratio, obs)
        operators = obs.operators_ready
        if self.base is RatioBase.available:
            operators += obs.operators_wrap_up
        return max(0, round(self.ratio * operators) - obs.calls_dialling - obs.calls_waiting)


class VicidialAdaptPacer(Pacer):
    """VICIdial's ADAPT_HARD_LIMIT dial method, re-implemented from ``bin/AST_VDadapt.pl`` (v2.4) and
    ``bin/AST_VDauto_dial.pl``.

    Every second (the adapt loop's delay) it samples the ready operators (READY/DONE), the live calls waiting
    (``vicidial_auto_calls`` status LIVE) and the logged-in operators (all statuses, wrap-up included), keeping
    the last 15 samples. Every 15 s::

        differential = avg(ready) - avg(waiting)
        level = level × (1 + differential / avg(logged_in))        # adaptive_intensity 0, dl_diff_target 0
        level = min(level, 3.0)                                    # adaptive_maximum_level
        if calls in the last minute > 20 and drops/calls in it > 50%: level = level / 2
        if calls today > 50 and drops / live answers today > 3%:   level = 1.0   # the HARD_LIMIT
        level = max(level, 1.0)

    The drop statistics are recomputed every 60 s (``calculate_drops``), as in VICIdial. Dialling follows
    ``AST_VDauto_dial.pl`` with the current level: :class:`FixedRatioPacer` with ``RatioBase.dial_level``.
    """

    name = "vicidial_adapt"

    def __init__(self, *, drop_pct_limit: float = 3.0, max_level: float = 3.0, level: float = 1.0) -> None:
        self.drop_pct_limit = drop_pct_limit
        self.max_level = max_level
        self.level = level
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=15)
        self._next_sample: float | None = None
        self._next_level = 0.0
        self._next_drops = 0.0
        # (time, is drop) of results and drops, for the one-minute statistics; counters for "today"
        self._recent: deque[tuple[float, bool]] = deque()
        self._calls_today = 0
        self._answers_today = 0
        self._drops_today = 0
        self._calls_one = 0
        self._drops_one = 0
        self._drops_answers_today_pct = 0.0
        self._drops_one_pct = 0.0

    def on_call_result(self, placed_at: float, outcome: DialResult, ring_s: float) -> None:
        self._calls_today += 1
        self._recent.append((placed_at + ring_s, False))
        if outcome is DialResult.human:
            self._answers_today += 1

    def on_abandon(self, at: float) -> None:
        self._drops_today += 1
        self._recent.append((at, True))

    def _calculate_drops(self, now: float) -> None:
        recent = self._recent
        while recent and recent[0][0] <= now - 60.0:
            recent.popleft()
        self._calls_one = sum(1 for _, drop in recent if not drop)
        self._drops_one = sum(1 for _, drop in recent if drop)
        self._drops_one_pct = 100.0 * self._drops_one / self._calls_one if self._calls_one else 0.0
        answers = max(self._answers_today, 1)
        self._drops_answers_today_pct = 100.0 * self._drops_today / answers if self._drops_today else 0.0

    def _calculate_dial_level(self) -> None:
        n = len(self._samples)
        if not n:
            return
        ready = sum(s[0] for s in self._samples) / n
        waiting = sum(s[1] for s in self._samples) / n
        agents = sum(s[2] for s in self._samples) / n
        if agents <= 0:
            return
        level = self.level * (1.0 + (ready - waiting) / agents)
        level = min(level, self.max_level)
        if level < 1.0:
            level = 1.0
        if self._calls_one > 20 and self._drops_one_pct > 50.0:
            level /= 2.0
        if self._calls_today > 50 and self._drops_answers_today_pct > self.drop_pct_limit:
            level = 1.0
        self.level = max(level, 1.0)

    def decide(self, obs: Observation) -> int:
        now = obs.now
        if self._next_sample is None:
            self._next_sample = now
            self._next_level = now + 15.0
            self._next_drops = now  # VICIdial pulls a baseline drop count on its first loop
        while now >= self._next_sample:
            self._samples.append((obs.operators_ready, obs.calls_waiting, obs.operators_logged_in))
            self._next_sample += 1.0
        if now >= self._next_drops:
            self._calculate_drops(now)
            self._next_drops = now + 60.0
        if now >= self._next_level:
            self._calculate_dial_level()
            self._next_level = now + 15.0
        return _vicidial_goal(self.level, obs)


# --- the predictive pacer ----------------------------------------------------------------------------------------


def _normal_cdf(z: float) -> float:
    """P(N(0,1) <= z)."""
    return 0.5 * math.erfc(-z * 0.7071067811865476)


class _DecayingHistogram:
    """Exponentially weighted counts of dialling results by ring time (1 s bins), live and other apart.

    Each new result weighs ``2 ** (1 / half_life)`` times the previous one, so the estimate follows drift with a
    memory of about ``half_life`` results; the growing weight is renormalised now and then instead of decaying
    every bin on every result.
    """

    def __init__(self, bins: int, half_life: float) -> None:
        self.bins = bins
        self.live = [0.0] * bins
        self.other = [0.0] * bins
        self.live_total = 0.0
        self.other_total = 0.0
        self._weight = 1.0
        self._growth = 2.0 ** (1.0 / half_life)

    def add(self, ring_s: float, live: bool) -> None:
        b = min(int(ring_s), self.bins - 1)
        w = self._weight
        if live:
            self.live[b] += w
            self.live_total += w
        else:
            self.other[b] += w
            self.other_total += w
        self._weight = w * self._growth
        if self._weight > 1e100:
            scale = 1.0 / self._weight
            self.live = [x * scale for x in self.live]
            self.other = [x * scale for x in self.other]
            self.live_total *= scale
            self.other_total *= scale
            self._weight = 1.0


class _Survival:
    """Kaplan–Meier survival of a duration from recent completed samples plus ongoing ones (right-censored).

    Ongoing conversations matter: early in a campaign only the short ones have finished, and a pacer that learnt
    from finished calls alone would expect operators back too soon. Beyond the data the survival continues with an
    exponential tail fitted to the top decile.
    """

    def __init__(self, done: Sequence[float], ongoing: Sequence[float]) -> None:
        events = sorted(done)
        censored = sorted(ongoing)
        times: list[float] = []
        surv: list[float] = []
        s = 1.0
        at_risk = len(events) + len(censored)
        ci = 0
        i = 0
        n_events = len(events)
        while i < n_events:
            t = events[i]
            while ci < len(censored) and censored[ci] < t:
                at_risk -= 1
                ci += 1
            d = 1
            while i + d < n_events and events[i + d] == t:
                d += 1
            if at_risk > 0:
                s *= 1.0 - d / at_risk
            at_risk -= d
            i += d
            times.append(t)
            surv.append(s)
        self.times = times
        self.surv = surv
        self.last_time = times[-1] if times else 0.0
        self.last_surv = surv[-1] if surv else 1.0
        # exponential tail beyond the 90th percentile of all durations seen (events and censored exposure)
        everything = sorted(events + censored)
        if everything:
            q = everything[int(0.9 * (len(everything) - 1))]
            exposure = sum(x - q for x in everything if x > q)
            tail_events = sum(1 for x in events if x > q)
            mean_tail = exposure / tail_events if tail_events else max(q, 1.0)
            self.tail_rate = 1.0 / max(mean_tail, 1.0)
        else:
            self.tail_rate = 1.0 / 60.0

    def __call__(self, t: float) -> float:
        """P(duration > t)."""
        if t <= 0:
            return 1.0
        if t > self.last_time:
            return self.last_surv * math.exp(-self.tail_rate * (t - self.last_time))
        i = bisect.bisect_right(self.times, t)
        return self.surv[i - 1] if i else 1.0

    def done_within(self, elapsed: float, more: float) -> float:
        """P(duration <= elapsed + more | duration > elapsed)."""
        if more <= 0:
            return 0.0
        s0 = self(elapsed)
        if s0 <= 1e-12:
            # past all the data: the exponential tail is memoryless
            return 1.0 - math.exp(-self.tail_rate * more)
        return max(0.0, min(1.0, 1.0 - self(elapsed + more) / s0))


def _with_variances(probabilities: list[float]) -> tuple[list[float], list[float]]:
    return probabilities, [q * (1.0 - q) for q in probabilities]


# bounds of the threshold: below 1e-4 the pacer is progressive anyway; above 0.5 a call would more likely be
# abandoned than served
_LOG_THETA_MIN = math.log(1e-4)
_LOG_THETA_MAX = math.log(0.5)
# added to every variance: keeps the risk a smooth function of the state when the forecast is (nearly) certain,
# e.g. an idle campaign with nothing dialling, where a pure step would flip between 0 and 1
_MIN_VARIANCE = 0.05

# elapsed-talk bins (s) used to group operators in a call; narrow where the conditional forecast changes fast
_TALK_EDGES: tuple[float, ...] = (0, 10, 20, 30, 45, 60, 80, 100, 125, 150, 180, 220, 260, 300, 360, 420, 500, 600,
                                  750, 900, 1200, 1500, 2000, 3000, 5000)


@dataclass(frozen=True)
class PacingHistory:
    """What a campaign's attempts say about its pacing so far (read by ``engine.repository.pacing_history``).

    Times are readings of the engine's clock; ``window`` has an entry per live answer (False) and per abandon
    (True) of the rolling window, ``results`` the ring time and liveness of recent calls, oldest first.
    """

    live_answers: int
    abandons: int
    window: Sequence[tuple[float, bool]] = ()
    results: Sequence[tuple[float, bool]] = ()
    talks: Sequence[float] = ()
    wraps: Sequence[float] = ()


class PredictivePacer(Pacer):
    r"""Ours: place a call only while its own risk of being abandoned stays under a threshold, and move the
    threshold with a feedback loop on the abandon budget.

    **Forecast.** At each decision, for a new call that would be answered live :math:`\tau` seconds from now, the
    pacer compares the operators available by :math:`\tau + g` (``g`` = ``abandon_after_s``, the 2 s grace) with
    the live answers that come before it — answered calls are served first come, first served:

    .. math::

        S(\tau) = F + \sum_{j \in \text{talk}} q_j(\tau + g) + \sum_{j \in \text{wrap}} u_j(\tau + g)

        D_n(\tau) = W + \sum_{i \in \text{dialling}} r_i(\tau) + \lambda\,\hat p \int_0^{\tau} \hat G(s)\,ds
                    + (n-1)\,\hat p\,\hat G(\tau)

    :math:`F` free operators; :math:`W` live calls waiting; :math:`q_j(x) = P(T + U \le e_j + x \mid T > e_j)`, the
    chance that operator *j*, :math:`e_j` seconds into a conversation, is done with it and with the wrap-up
    (:math:`T` talk time, :math:`U` wrap-up) within :math:`x`; :math:`u_j` the same for an operator :math:`e_j`
    seconds into a wrap-up; :math:`r_i(\tau)` the chance that dialling call *i*, :math:`a_i` seconds old and not yet
    answered, is answered live within :math:`\tau`; :math:`\lambda\hat p\int_0^\tau\hat G` the live answers,
    before :math:`\tau`, of the calls the next decisions will place at the current rate :math:`\lambda`
    (placements per second, exponentially weighted over ``rate_memory_s``); and :math:`(n-1)\hat p\hat G(\tau)`
    the other new calls of this decision answering first (:math:`\hat p` the live-answer probability,
    :math:`\hat G` the distribution of the live answer delay). Every term is a sum of independent Bernoulli (or
    Poisson) counts, so :math:`X = S - D_n` is approximately normal with variance :math:`\sum p(1-p)` (plus the
    Poisson means); the new call is abandoned when :math:`X < 1`, i.e. no operator is left for it:

    .. math::

        \rho_n = \frac{1}{M}\sum_{m=1}^{M}
                 \Phi\left(\frac{\tfrac12 - \mathbb{E}X(\tau_m)}{\sqrt{\operatorname{Var}X(\tau_m)}}\right)

    over :math:`M` (``quantiles``) quantiles :math:`\tau_m` of the live answer delay. The pacer places
    :math:`n^\ast = \max\{n : \rho_n \le \theta\}` calls — the marginal call's probability of being abandoned
    if it is answered, which is the quantity the regulation caps (abandoned / live answered). :math:`\rho_n` grows
    with :math:`n`, so :math:`n^\ast` is found by galloping and bisection.

    **Estimates**, learnt online from the pacer's own calls, never from the traffic model: :math:`\hat p` and the
    ring-time distributions of live answers and of other results (which give :math:`r_i` for a call of any age)
    from exponentially weighted histograms with a half-life of ``memory`` results, so that they follow drift such as
    answer rates changing by the hour; talk and wrap-up durations by Kaplan–Meier over the last
    ``duration_samples`` completed ones with the ones still going as censored samples (early in a campaign only
    short conversations have ended; ignoring the long ones still running would expect operators back too soon).

    **Feedback.** The model is approximate (normal sums, independence, a steady placement rate), so the threshold is
    set by the abandon budget, the regulated quantity itself — a PI controller on the slack:

    .. math::

        \text{slack} = \min\left(c^\ast L - A,\; c^\ast L_w - A_w,\; s_{\max}\right), \qquad
        \log\theta = \log\theta_I + \eta\,\text{slack}, \qquad
        \log\theta_I \mathrel{+}= \beta\,(\text{slack} - s_0) \text{ at every live answer}

    :math:`L, A` are the live answers and abandons of the whole campaign, :math:`L_w, A_w` those of the rolling
    ``window_s``; :math:`c^\ast L` is the budget (:meth:`budget`: ``target`` × ``cap`` keeps a safety margin under
    the cap, and while the sample is small an upper confidence bound keeps the cap with high probability), :math:`s_0`
    (``reserve``) a few abandons in hand for bad luck at the end. Abandons over budget tighten the threshold at
    once (:math:`\eta` = ``gain``); the integral (:math:`\beta` = ``integral_gain``, per live answer so that it
    scales with the campaign's volume) finds the threshold that spends the budget, whatever the model's bias;
    :math:`s_{\max}` (``max_slack``) stops a quiet spell from banking a burst. Until it has seen ``warmup_live``
    live answers and ``warmup_talks`` conversations the pacer dials progressively, which abandons nothing.

    One setting (the defaults) runs every campaign: nothing is tuned per scenario.

    References: D. A. Samuelson, "Predictive dialing for outbound telephone call centers", *Interfaces* 29(5),
    1999 (dialling against a forecast of agents becoming free); G. Koole, *Call Center Optimization*, 2013, on
    outbound and predictive dialling (the abandonment/productivity trade-off); E. L. Kaplan and P. Meier,
    "Nonparametric estimation from incomplete observations", *JASA* 53, 1958; K. J. Åström and T. Hägglund,
    *PID Controllers*, 1995; the 3% of live calls and 2 seconds rules: Ofcom's persistent misuse statement
    (UK, 2016) and the US Telemarketing Sales Rule, 16 CFR 310.4(b)(4).
    """

    name = "predictive"

    def __init__(
        self,
        *,
        cap: float = 0.03,
        target: float = 0.85,
        abandon_after_s: float = 2.0,
        window_s: float = 3600.0,
        theta0: float = 0.03,
        gain: float = 0.25,
        integral_gain: float = 0.0005,
        reserve: float = 1.0,
        max_slack: float = 4.0,
        rate_memory_s: float = 60.0,
        memory: float = 400.0,
        duration_samples: int = 400,
        quantiles: int = 5,
        refresh_s: float = 15.0,
        warmup_live: int = 15,
        warmup_talks: int = 10,
        confidence_z: float = 1.645,
    ) -> None:
        self.cap = cap
        self.target = target
        self.grace = abandon_after_s
        self.window_s = window_s
        self.gain = gain
        self.integral_gain = integral_gain
        self.reserve = reserve
        self.max_slack = max_slack
        self.rate_memory_s = rate_memory_s
        self._log_theta_i = math.log(theta0)  # the integral part of log(threshold)
        self._rate = 0.0  # calls placed per second, exponentially weighted
        self._rate_at = 0.0
        self.duration_samples = duration_samples
        self.refresh_s = refresh_s
        self.warmup_live = warmup_live
        self.warmup_talks = warmup_talks
        self.confidence_z = confidence_z
        self._levels = [(m + 0.5) / quantiles for m in range(quantiles)]
        self._rings = _DecayingHistogram(121, memory)
        self._talks: deque[float] = deque(maxlen=duration_samples)
        self._wraps: deque[float] = deque(maxlen=duration_samples)
        self.live_answers = 0
        self.abandons = 0
        #: Live answers among the results the estimates were learnt from (the warm-up counts these).
        self.live_learnt = 0
        self._window: deque[tuple[float, bool]] = deque()  # (time, abandoned) of live answers in the window
        self._window_live = 0
        self._window_abandons = 0
        self._next_refresh = -math.inf
        # tables built by _refresh()
        self.p_live = 0.0
        self._tau: list[float] = []
        self._future: list[float] = []
        # per age bin: (probabilities by quantile, their Bernoulli variances); LUTs map whole seconds to bins
        self._ring_table: list[tuple[list[float], list[float]]] = []
        self._talk_table: list[tuple[list[float], list[float]]] = []
        self._wrap_table: list[tuple[list[float], list[float]]] = []
        self._ring_lut: list[int] = []
        self._talk_lut: list[int] = [bisect.bisect_right(_TALK_EDGES, x) - 1 for x in range(int(_TALK_EDGES[-1]) + 1)]
        self._wrap_lut: list[int] = []

    # --- history ------------------------------------------------------------------------------------------
    def on_call_result(self, placed_at: float, outcome: DialResult, ring_s: float) -> None:
        live = outcome is DialResult.human
        self._rings.add(ring_s, live)
        if live:
            self.live_answers += 1
            self.live_learnt += 1
            self._window.append((placed_at + ring_s, False))
            self._window_live += 1
            # integral action, one step per live answer so its speed scales with the campaign's volume
            slack = self._slack(placed_at + ring_s)
            log_theta = self._log_theta_i + self.integral_gain * (slack - self.reserve)
            self._log_theta_i = min(_LOG_THETA_MAX, max(_LOG_THETA_MIN, log_theta))  # no wind-up past the bounds

    def seed(self, history: PacingHistory) -> None:
        """Start from a campaign's recorded history (an engine restart, a new pacer after a configuration change):
        the whole-campaign and rolling-window abandon counts, and the recent results and durations the estimates
        learn from. The controller's integral starts afresh; the budget it steers by is the campaign's."""
        self.live_answers += history.live_answers
        self.abandons += history.abandons
        entries = sorted([*self._window, *history.window], key=lambda e: e[0])
        self._window = deque(entries)
        self._window_live = sum(1 for _, abandoned in entries if not abandoned)
        self._window_abandons = len(entries) - self._window_live
        for ring_s, live in history.results:
            self._rings.add(ring_s, live)
            self.live_learnt += live
        self._talks.extend(history.talks)
        self._wraps.extend(history.wraps)
        self._next_refresh = -math.inf

    def on_abandon(self, at: float) -> None:
        self.abandons += 1
        self._window.append((at, True))
        self._window_abandons += 1

    def on_talk_ended(self, duration: float) -> None:
        self._talks.append(duration)

    def on_wrap_up_ended(self, duration: float) -> None:
        self._wraps.append(duration)

    # --- the threshold ------------------------------------------------------------------------------------
    def _slack(self, now: float) -> float:
        """Abandons still allowed under the target rate: over the whole campaign and over the rolling window."""
        window = self._window
        horizon = now - self.window_s
        while window and window[0][0] < horizon:
            _, abandoned = window.popleft()
            if abandoned:
                self._window_abandons -= 1
            else:
                self._window_live -= 1
        slack = min(self.budget(self.live_answers) - self.abandons,
                    self.budget(self._window_live) - self._window_abandons)
        return min(self.max_slack, slack)

    def budget(self, live: int) -> float:
        """Abandons the pacer may spend over ``live`` live answers: ``target × cap`` of them, and no more than the
        count a whose upper confidence bound a + z·√a stays within the cap, i.e.
        a = ((√(z² + 4·cap·L) − z) / 2)². Abandons are rare events (about
        Poisson): with a small sample — a team of 5–10 in its first hour, 150 live answers — a rate that only meets
        the target on average ends over the cap about one time in three; the bound makes that about one in twenty
        (``confidence_z`` 1.645) and fades into the target as the sample grows (they meet near 4,000 answers)."""
        cap_live = self.cap * live
        z = self.confidence_z
        bounded = ((math.sqrt(z * z + 4.0 * cap_live) - z) / 2.0) ** 2
        return min(self.target * cap_live, bounded)

    def threshold(self, now: float) -> float:
        """The largest abandon probability a new call may carry now."""
        return math.exp(min(_LOG_THETA_MAX, self._log_theta_i + self.gain * self._slack(now)))

    # --- model tables -------------------------------------------------------------------------------------
    def _refresh(self, obs: Observation) -> None:
        now = obs.now
        rings = self._rings
        live, other = rings.live, rings.other
        bins = rings.bins
        total = rings.live_total + rings.other_total
        self.p_live = rings.live_total / total if total > 0 else 0.0

        # quantiles of the live answer delay (linear inside 1 s bins)
        tau = []
        acc = 0.0
        b = 0
        for level in self._levels:
            goal = level * rings.live_total
            while b < bins and acc + live[b] < goal:
                acc += live[b]
                b += 1
            frac = (goal - acc) / live[b] if b < bins and live[b] > 0 else 0.0
            tau.append(min(b + frac, float(bins)))
        self._tau = tau

        # r(a, tau_m): P(live answer within (a, a + tau_m] | still dialling at age a), a at bin middles
        cum_live = [0.0] * (bins + 1)
        for i in range(bins):
            cum_live[i + 1] = cum_live[i] + live[i]
        tail_all = [0.0] * (bins + 1)
        for i in range(bins - 1, -1, -1):
            tail_all[i] = tail_all[i + 1] + live[i] + other[i]

        def live_cdf(x: float) -> float:
            if x >= bins:
                return cum_live[bins]
            i = int(x)
            return cum_live[i] + (x - i) * live[i]

        # H(tau) = integral of the live-delay CDF over [0, tau]: live answers before tau from calls placed at a
        # steady rate during (0, tau) are rate * p * H(tau)
        norm = 1.0 / rings.live_total if rings.live_total > 0 else 0.0
        self._future = []
        for t in tau:
            area = 0.0
            i = 0
            while i + 1 <= t:
                area += cum_live[i] + 0.5 * live[i]
                i += 1
            if i < bins:
                frac = t - i
                area += frac * cum_live[i] + 0.5 * frac * frac * live[i]
            self._future.append(area * norm)

        ring_table = []
        for a in range(bins):
            age = a + 0.5
            pending = tail_all[a + 1] + 0.5 * (live[a] + other[a])
            if pending <= 1e-12 * max(total, 1e-300):
                ring_table.append(_with_variances([0.0] * len(tau)))
                continue
            base = live_cdf(age)
            ring_table.append(_with_variances([min(1.0, max(0.0, (live_cdf(age + t) - base) / pending))
                                               for t in tau]))
        self._ring_table = ring_table
        self._ring_lut = list(range(bins))

        # operators: talk + wrap-up remaining, by elapsed-talk bin; wrap-up remaining by elapsed wrap-up second
        talk = _Survival(list(self._talks), [now - t for t in obs.talk_started_at])
        wrap = _Survival(list(self._wraps), [now - t for t in obs.wrap_up_started_at])
        wraps_sorted = sorted(self._wraps)
        if wraps_sorted:
            k = len(wraps_sorted)
            wrap_q = [wraps_sorted[min(k - 1, int(lv * k))] for lv in self._levels]
        else:
            wrap_q = [0.0] * len(self._levels)
        horizons = [t + self.grace for t in tau]
        talk_table = []
        for lo, hi in zip(_TALK_EDGES, (*_TALK_EDGES[1:], _TALK_EDGES[-1] * 2), strict=True):
            e = (lo + hi) / 2
            row = []
            for x in horizons:
                row.append(sum(talk.done_within(e, x - u) for u in wrap_q) / len(wrap_q))
            talk_table.append(_with_variances(row))
        self._talk_table = talk_table
        max_wrap = int(min(max(wraps_sorted, default=0.0), 600.0)) + 2
        self._wrap_table = [_with_variances([wrap.done_within(w + 0.5, x) for x in horizons]) for w in range(max_wrap)]
        self._wrap_lut = list(range(max_wrap))
        self._next_refresh = now + self.refresh_s

    # --- the decision -------------------------------------------------------------------------------------
    def decide(self, obs: Observation) -> int:
        n = self._decide(obs)
        # exponentially weighted placement rate, the forecast of the calls the next decisions will add
        now = obs.now
        self._rate = self._rate * math.exp((self._rate_at - now) / self.rate_memory_s) + n / self.rate_memory_s
        self._rate_at = now
        return n

    def _decide(self, obs: Observation) -> int:
        now = obs.now
        theta = self.threshold(now)
        if self.live_learnt < self.warmup_live or len(self._talks) < self.warmup_talks or not self._wraps:
            return _uncovered_free(obs)
        if now >= self._next_refresh:
            self._refresh(obs)
        m_count = len(self._tau)

        # supply: free operators now, plus those finishing talk + wrap-up, or wrap-up, within tau + grace;
        # demand: live calls waiting, plus dialling calls answering live before the new one. Operators and calls
        # are counted by age bin, each bin adding count × its row of probabilities (and of Bernoulli variances).
        net = [float(obs.operators_ready - obs.calls_waiting)] * m_count
        var = [0.0] * m_count
        for lut, table, started_at, sign in (
            (self._talk_lut, self._talk_table, obs.talk_started_at, 1.0),
            (self._wrap_lut, self._wrap_table, obs.wrap_up_started_at, 1.0),
            (self._ring_lut, self._ring_table, obs.dialled_at, -1.0),
        ):
            if not started_at:
                continue
            top = len(lut) - 1
            counts = Counter([lut[int(now - t)] if now - t < top else lut[top] for t in started_at])
            for i, c in counts.items():
                means, variances = table[i]
                for m in range(m_count):
                    net[m] += sign * c * means[m]
                    var[m] += c * variances[m]

        p = self.p_live
        rate = self._rate * math.exp((self._rate_at - now) / self.rate_memory_s)
        for m in range(m_count):
            future = rate * p * self._future[m]
            net[m] -= future
            var[m] += future
        others = [p * lv for lv in self._levels]
        inv_m = 1.0 / m_count

        def risk(n: int) -> float:
            total = 0.0
            k = n - 1
            for m in range(m_count):
                o = others[m]
                mean = net[m] - k * o
                v = var[m] + k * o * (1.0 - o) + _MIN_VARIANCE
                total += _normal_cdf((0.5 - mean) / math.sqrt(v))
            return total * inv_m

        if risk(1) > theta:
            return 0
        # the risk grows with n: gallop, then bisect for the last n with risk(n) <= theta; the limit only guards
        # against a model gone blind (it never binds in a sane campaign)
        limit = 4 * max(obs.operators_logged_in, 1) + 8
        lo, hi = 1, 2
        while hi <= limit and risk(hi) <= theta:
            lo, hi = hi, hi * 2
        hi = min(hi, limit + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if risk(mid) <= theta:
                lo = mid
            else:
                hi = mid
        return lo


PACERS: dict[str, Callable[[], Pacer]] = {
    ProgressivePacer.name: ProgressivePacer,
    PreviewPacer.name: PreviewPacer,
    VicidialAdaptPacer.name: VicidialAdaptPacer,
    PredictivePacer.name: PredictivePacer,
}


def make_pacer(name: str) -> Pacer:
    """A pacer with its default setting, by name (the fixed ones need a parameter: build them directly)."""
    try:
        factory = PACERS[name]
    except KeyError:
        raise ValueError(f"unknown pacer {name!r}; known: {', '.join(PACERS)}") from None
    return factory()
