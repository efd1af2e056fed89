"""Sandbox side, candidate process: load the candidate's code, call its function on
each argument list, report the *return values* as plain data. Nothing here knows an
expected value: comparison happens outside (the trusted side, or the test process).

stdin: {"nonce", "entry_point", "calls": [[args, kwargs], ...]} (plainwire-encoded; a call
[args, kwargs, name] calls the program's module-level `name` instead, a helper the
reference's test code uses).
stdout, one line per event, each prefixed by the nonce:
    {"ev": "load", "ok": true} | {"ev": "load", "ok": false, "kind": "compile"|"runtime", "error"}
    {"ev": "begin", "i"}
    {"ev": "end", "i", "t", "cpu", "ok": true, "value", "after"?}   # after: the args, if mutated
    {"ev": "end", "i", "t", "cpu", "ok": false, "kind": "exception"|"unplain"|"timeout", "type", "error"}
(t: wall seconds, cpu: CPU seconds of the call; "timeout": the per-call alarm fired.)
The candidate's own prints go to stderr. The candidate can of course write to the
report descriptor too; what it could forge is only return values, which it could as
well have returned: the verdict is never its to give.
"""
import json
import os
import signal
import sys
import time

import plainwire

_MSG_CHARS = 300


class CallTimeout(BaseException):
    """The per-call alarm. Cooperative (a candidate can block it); the trusted side's
    wall clock for the whole run is the hard limit."""


def _alarm(signum, frame):
    raise CallTimeout()


def main():
    req = json.loads(sys.stdin.buffer.read())
    nonce = req["nonce"]
    report = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # candidate prints -> stderr
    sys.stdout = sys.stderr

    def emit(obj):
        report.write(nonce + " " + json.dumps(obj, separators=(",", ":")) + "\n")
        report.flush()

    source = req["code"]
    try:
        code = compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError) as e:
        emit({"ev": "load", "ok": False, "kind": "compile", "error": f"{type(e).__name__}: {e}"[:_MSG_CHARS]})
        return
    ns = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(code, ns)
    except BaseException as e:  # SystemExit included: exiting during load is a runtime error
        emit({"ev": "load", "ok": False, "kind": "runtime", "error": f"{type(e).__name__}: {e}"[:_MSG_CHARS]})
        return
    fn = ns.get(req["entry_point"])
    if not callable(fn):
        emit({"ev": "load", "ok": False, "kind": "runtime",
              "error": f"no function named {req['entry_point']!r} is defined"})
        return
    emit({"ev": "load", "ok": True})
    alarm_s = float(req.get("alarm_s") or 0)  # wall-clock safety net per call
    cpu_alarm_s = float(req.get("cpu_alarm_s") or 0)  # the time limit proper: CPU time
    stop_on_failure = bool(req.get("stop_on_failure"))  # the first exception/timeout decides
    for i, call in enumerate(req["calls"]):
        args_enc, kwargs_enc = call[0], call[1]
        args, kwargs = plainwire.decode(args_enc), plainwire.decode(kwargs_enc)
        emit({"ev": "begin", "i": i})
        name = call[2] if len(call) > 2 else None
        target = fn if name is None else ns.get(name)
        if not callable(target):
            emit({"ev": "end", "i": i, "t": 0.0, "cpu": 0.0, "ok": False, "kind": "exception", "type": "NameError",
                  "error": f"name {name!r} is not defined by the program"})
            if stop_on_failure:
                return
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            if alarm_s:
                signal.signal(signal.SIGALRM, _alarm)
                signal.setitimer(signal.ITIMER_REAL, alarm_s)
            if cpu_alarm_s:
                signal.signal(signal.SIGPROF, _alarm)
                signal.setitimer(signal.ITIMER_PROF, cpu_alarm_s)
            try:
                value = target(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.setitimer(signal.ITIMER_PROF, 0)
        except CallTimeout:
            emit({"ev": "end", "i": i, "t": time.perf_counter() - t0, "cpu": time.process_time() - c0, "ok": False,
                  "kind": "timeout"})
            if stop_on_failure:
                return
            continue
        except BaseException as e:
            t, cpu = time.perf_counter() - t0, time.process_time() - c0
            try:
                msg = str(e)[:_MSG_CHARS]
            except BaseException:
                msg = "(unprintable)"
            kind = "exception"
            emit({"ev": "end", "i": i, "t": t, "cpu": cpu, "ok": False, "kind": kind,
                  "type": type(e).__name__ if type(e).__module__ == "builtins" else "Exception", "error": msg})
            if stop_on_failure:
                return
            continue
        t, cpu = time.perf_counter() - t0, time.process_time() - c0
        try:
            out = {"ev": "end", "i": i, "t": t, "cpu": cpu, "ok": True, "value": plainwire.encode(value)}
            after = plainwire.encode(args)
            if after != args_enc:
                out["after"] = after
        except plainwire.NotPlainError as e:
            out = {"ev": "end", "i": i, "t": t, "ok": False, "kind": "unplain", "type": "", "error": str(e)}
        except BaseException as e:  # a hostile __len__/__iter__ during encoding
            out = {"ev": "end", "i": i, "t": t, "ok": False, "kind": "unplain", "type": "",
                   "error": f"encoding the value raised {type(e).__name__}"}
        emit(out)


if __name__ == "__main__":
    main()
