"""The after-call summary: what the caller wanted, what was done, how the call ended.

Built from the call's own events, no language model: the flow the dialogue followed (or
the caller's most frequent intent), the caller's first request in their words, the
values the bot collected (their names, never their values), the actions the bot carried
out and what it said they did, the workflow steps the agent ticked on the checklist, the
coach's prompts, the handoff and the end reason. Deterministic: the same events always
give the same summary, so it can be tested and trusted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

#: Why a call ended, as a person reads it.
END_REASONS = {
    "hangup": "the caller hung up",
    "agent_hangup": "the agent ended the call",
    "callback": "no agent answered in time; a callback was requested",
    "failed": "the call failed",
    "shutdown": "the server shut down during the call",
    "interrupted": "the call was interrupted",
}
#: The bot's closing question after an action, dropped from what the action did.
_ANYTHING_ELSE = ("Is there anything else", "Anything else I can", "Can I help with anything")


def _label(flow: str) -> str:
    return flow.replace("_", " ").strip()


def _first_sentence_before(text: str, markers: tuple[str, ...]) -> str:
    for marker in markers:
        at = text.find(marker)
        if at > 0:
            return text[:at].strip()
    return text.strip()


def summarize(events: Iterable[dict[str, Any]], *, end_reason: str = "",
              handoff: dict[str, Any] | None = None, agent: str | None = None
              ) -> dict[str, Any]:
    """The summary of one call from its events (each an event's ``to_dict()``)."""
    flows: list[str] = []
    intents: Counter[str] = Counter()
    request = ""
    collected: list[str] = []
    actions: list[str] = []
    answered: list[str] = []
    checklist: dict[str, list[dict[str, Any]]] = {}
    prompts: list[dict[str, Any]] = []
    played: set[int] = set()
    peak_anger = 0.0
    goodbye = False
    pending_action = False
    for e in events:
        kind = e.get("kind")
        if kind == "transcript_final" and e.get("leg") == "caller" and not request:
            words = str(e.get("text", "")).split()
            if len(words) >= 3:  # "Hi." or "Yes." is not what the call is about
                request = " ".join(words)
        elif kind == "intent" and e.get("leg") == "caller":
            if e.get("intent") and e["intent"] != "out_of_scope":
                intents[e["intent"]] += 1
        elif kind == "bot_reply":
            act, flow = e.get("act", ""), e.get("flow", "")
            if flow and act not in ("greet", ""):
                flows.append(flow)
            for slot in [*e.get("slots", {}), *e.get("confirmed", [])]:
                if slot not in collected:
                    collected.append(slot)
            if act == "act":
                pending_action = True
            elif act == "close" and pending_action:
                pending_action = False
                did = _first_sentence_before(str(e.get("text", "")), _ANYTHING_ELSE)
                actions.append(did or f"{_label(flow)} done")
            elif act == "answer" and flow:
                answered.append(_label(flow))
            elif act == "goodbye":
                goodbye = True
        elif kind == "checklist":
            checklist[e.get("flow", "")] = list(e.get("steps", []))
        elif kind == "coach_prompt":
            prompts.append({"prompt_id": e.get("prompt_id"), "rule": e.get("rule", ""),
                            "spoken": e.get("spoken", ""), "detail": e.get("detail", ""),
                            "t_audio": e.get("t_audio"), "played": False,
                            "shown": True, "reason": e.get("reason", "")})
        elif kind == "coach_prompt_played":
            played.add(e.get("prompt_id"))
        elif kind == "emotion" and e.get("leg") == "caller":
            peak_anger = max(peak_anger, float(e.get("rolling_anger") or 0.0))
    for prompt in prompts:
        prompt["played"] = prompt["prompt_id"] in played

    flow = flows[-1] if flows else (intents.most_common(1)[0][0] if intents else "")
    wanted = _label(flow) if flow else "not recognised"
    steps_done = [s.get("label") or s.get("name", "") for steps in checklist.values()
                  for s in steps if s.get("done")]
    steps_open = [s.get("label") or s.get("name", "") for steps in checklist.values()
                  for s in steps if not s.get("done")]

    done: list[str] = []
    if collected:
        done.append("collected " + ", ".join(_label(s) for s in collected))
    done += [f"answered a question about {a}" for a in dict.fromkeys(answered)]
    done += actions
    if handoff:
        done.append(f"handed to a person ({handoff.get('rule', '')})")
    if steps_done:
        done.append("agent completed: " + ", ".join(steps_done))
    spoken = sum(1 for p in prompts if p["played"])
    if prompts:
        done.append(f"{len(prompts)} coaching prompt(s), {spoken} spoken")

    outcome = _outcome(end_reason, handoff, agent, actions, goodbye)
    text = f"Caller wanted: {wanted}"
    if request:
        text += f" (\u201c{request}\u201d)"
    text += ". Done: " + ("; ".join(done) if done else "nothing recorded") + "."
    text += f" Outcome: {outcome}."
    if peak_anger >= 7.0:
        text += f" Caller anger peaked at {peak_anger:.1f} of 10."
    return {"wanted": wanted, "flow": flow, "request": request, "done": done,
            "actions": actions, "collected": collected, "steps_done": steps_done,
            "steps_open": steps_open, "prompts": prompts, "outcome": outcome,
            "peak_anger": round(peak_anger, 1), "text": text}


def _outcome(end_reason: str, handoff: dict[str, Any] | None, agent: str | None,
             actions: list[str], goodbye: bool) -> str:
    ended = END_REASONS.get(end_reason, end_reason or "ended")
    if agent:
        return f"handled by {agent}; {ended}"
    if handoff:
        return f"waiting for an agent ({handoff.get('status', 'waiting')}); {ended}"
    if actions or goodbye:
        return f"resolved by the bot; {ended}"
    return ended
