"""gotmpl.py - a small renderer for the subset of Go text/template and Sprig
that helm/kafscale/templates use, so the chart can be rendered and checked
without helm (which Debian does not package).

It follows Helm where that matters for the chart's output:
  - numbers in values.yaml are float64 (Helm reads values through JSON), so
    printing a large one gives Go's %v form, 5.36870912e+08; templates must
    pipe such values through int64 (the checker flags the exponent form);
  - eq/lt/gt refuse to compare an int with a float, as Go does;
  - {{- and -}} trim whitespace; toYaml sorts keys and drops the final
    newline; nindent/indent pad every line.
Reads of .Values are tracked: a key that values.yaml does not define is an
error (Helm would silently print nothing), and every key read is recorded so
the checker can report values that no template uses.

Supported: actions, comments, if/else if/else, with/else, range (lists and
maps, with $i, $v :=), define, template, variables ($x := / =), pipelines,
parenthesised sub-pipelines, and the functions in FUNCS below.
"""
import base64
import json
import re

import yaml


class TemplateError(Exception):
    pass


class RenderFail(Exception):
    """The template called fail/required: the chart refused the values."""


# ---------------------------------------------------------------- values ----

class VDict(dict):
    """A values.yaml map that knows its path and records key reads."""
    def __init__(self, d, path, tracker):
        super().__init__(d)
        self.path, self.tracker = path, tracker


class VList(list):
    def __init__(self, items, path, tracker):
        super().__init__(items)
        self.path, self.tracker = path, tracker


class Tracker:
    def __init__(self):
        self.used = set()      # dotted paths read (or consumed whole)
        self.missing = []      # (path, template) of reads of undefined keys
        self.template = "?"


def wrap_values(v, path, tracker):
    """Values as Helm sees them: ints become floats (JSON numbers)."""
    if isinstance(v, dict):
        return VDict({k: wrap_values(x, f"{path}.{k}", tracker) for k, x in v.items()}, path, tracker)
    if isinstance(v, list):
        return VList([wrap_values(x, f"{path}[]", tracker) for x in v], path, tracker)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def consume(v):
    """Marks a whole values subtree as used (toYaml, range, join...)."""
    if isinstance(v, (VDict, VList)):
        v.tracker.used.add(v.path)


# ------------------------------------------------------------ formatting ----

def go_float(f):
    """strconv.FormatFloat(f, 'g', -1, 64), as fmt's %v prints a float64."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    r = repr(abs(f))
    m = re.match(r"^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$", r)
    ip, fp, ex = m.group(1), m.group(2) or "", int(m.group(3) or 0)
    digits = (ip + fp).lstrip("0")
    lead_zeros = len(ip + fp) - len((ip + fp).lstrip("0"))
    exp = len(ip) - 1 + ex - lead_zeros          # decimal exponent of the first digit
    digits = digits.rstrip("0") or "0"
    sign = "-" if f < 0 else ""
    if exp < -4 or exp >= 6:                     # shortest: %e when exp outside [-4, 6)
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return sign + "0." + "0" * (-exp - 1) + digits
    if len(digits) <= exp + 1:
        return sign + digits + "0" * (exp + 1 - len(digits))
    return sign + digits[:exp + 1] + "." + digits[exp + 1:]


def go_str(v):
    """fmt.Sprint(v) for the types templates see."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        consume(v)
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if isinstance(v, dict):
        consume(v)
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def strval(v):
    """Sprig's strval (toString, quote): nil is "" for quote, <nil> else."""
    if v is None:
        return "<nil>"
    return go_str(v)


def truthy(v):
    if v is None or v is False:
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0
    if isinstance(v, (str, list, dict, tuple)):
        return len(v) > 0
    return True


def plain(v):
    """Values as JSON-ish plain data, for toYaml."""
    consume(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return int(v)
    return v


def to_yaml(v):
    if v is None:
        return "null"
    out = yaml.safe_dump(plain(v), default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 20)
    if out.endswith("\n...\n"):
        out = out[:-5]
    return out.rstrip("\n")


def go_quote(s):
    return json.dumps(s, ensure_ascii=False)


def go_printf(fmt, *args):
    args = list(args)
    out, i = [], 0
    pos = 0
    for m in re.finditer(r"%(%|[-+# 0]*\d*(?:\.\d+)?[sdvqt])", fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        spec = m.group(1)
        if spec == "%":
            out.append("%")
            continue
        if i >= len(args):
            out.append("%!" + spec[-1] + "(MISSING)")
            continue
        a = args[i]
        i += 1
        verb = spec[-1]
        if verb == "d":
            if isinstance(a, bool) or not isinstance(a, int):
                out.append(f"%!d({type(a).__name__}={go_str(a)})")
            else:
                out.append(str(a))
        elif verb == "q":
            out.append(go_quote(go_str(a)))
        else:
            out.append(go_str(a))
    out.append(fmt[pos:])
    if i < len(args):
        out.append("%!(EXTRA)")
    return "".join(out)


def kind_of(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def compare(a, b, op):
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        raise TemplateError(f"incompatible types for comparison: {ka} {go_str(a)} and {kb} {go_str(b)}")
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if ka not in ("int", "float", "string"):
        raise TemplateError(f"invalid type for comparison: {ka}")
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def to_int(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return int(float(v))
            except ValueError:
                return 0
    return 0


def kind_name(v):
    """reflect.Kind names, as Sprig's kindIs/kindOf report them."""
    if v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "slice"
    if isinstance(v, dict):
        return "map"
    return "ptr"


def f_default(d, *v):
    given = v[0] if v else None
    return given if truthy(given) else d


def f_required(msg, v=None):
    if v is None or (isinstance(v, str) and v == ""):
        raise RenderFail(msg)
    return v


def f_fail(msg):
    raise RenderFail(msg)


def f_join(sep, v):
    consume(v)
    if isinstance(v, list):
        return sep.join(strval(x) for x in v)
    return strval(v)


def f_has(needle, hay):
    consume(hay)
    return needle in (hay or [])


def f_index(coll, *keys):
    for k in keys:
        consume(coll) if not isinstance(coll, VDict) else coll.tracker.used.add(f"{coll.path}.{k}")
        if isinstance(coll, dict):
            coll = coll.get(k)
        elif isinstance(coll, list):
            coll = coll[to_int(k)]
        else:
            raise TemplateError(f"index of {go_str(coll)}")
    return coll


def f_eq(a, *bs):
    return any(compare(a, b, "eq") for b in bs)


FUNCS = {
    "default": f_default,
    "quote": lambda *a: " ".join(go_quote(strval(x)) for x in a if x is not None),
    "squote": lambda *a: " ".join("'" + strval(x) + "'" for x in a if x is not None),
    "toString": strval,
    "toYaml": to_yaml,
    "toJson": lambda v: json.dumps(plain(v), separators=(",", ":")),
    "indent": lambda n, s: "\n".join(" " * n + line for line in s.split("\n")),
    "nindent": lambda n, s: "\n" + "\n".join(" " * n + line for line in s.split("\n")),
    "trunc": lambda n, s: s[:n] if n >= 0 else s[n:],
    "trimSuffix": lambda suf, s: s[:-len(suf)] if suf and s.endswith(suf) else s,
    "trimPrefix": lambda pre, s: s[len(pre):] if pre and s.startswith(pre) else s,
    "trim": lambda s: s.strip(),
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "replace": lambda old, new, s: s.replace(old, new),
    "contains": lambda sub, s: sub in s,
    "hasPrefix": lambda pre, s: s.startswith(pre),
    "hasSuffix": lambda suf, s: s.endswith(suf),
    "printf": go_printf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "int": to_int,
    "int64": to_int,
    "float64": lambda v: float(v),
    "add": lambda *a: sum(to_int(x) for x in a),
    "sub": lambda a, b: to_int(a) - to_int(b),
    "mul": lambda a, b: to_int(a) * to_int(b),
    "len": lambda v: len(v),
    "empty": lambda v: not truthy(v),
    "not": lambda v: not truthy(v),
    "eq": f_eq,
    "ne": lambda a, b: compare(a, b, "ne"),
    "lt": lambda a, b: compare(a, b, "lt"),
    "le": lambda a, b: compare(a, b, "le"),
    "gt": lambda a, b: compare(a, b, "gt"),
    "ge": lambda a, b: compare(a, b, "ge"),
    "list": lambda *a: list(a),
    "dict": lambda *a: {strval(a[i]): a[i + 1] for i in range(0, len(a) - 1, 2)},
    "index": f_index,
    "has": f_has,
    "join": f_join,
    "b64enc": lambda s: base64.b64encode(strval(s).encode()).decode(),
    "required": f_required,
    "kindIs": lambda k, v: kind_name(v) == k,
    "kindOf": lambda v: kind_name(v),
    "fail": f_fail,
}
# and/or are special: Go returns the deciding argument and short-circuits.

# ------------------------------------------------------------------ lexer ----

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)


def tokenize(src, where):
    toks, pos = [], 0
    while pos < len(src):
        m = TOKEN_RE.match(src, pos)
        if not m:
            raise TemplateError(f"{where}: cannot parse action near {src[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        toks.append((kind, m.group(kind)))
    return toks


def split_actions(text, name):
    """[(kind, payload, line)]: ("text", s) and ("action", src), trims applied."""
    out, pos, line = [], 0, 1
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(["text", text[pos:], line])
            break
        chunk = text[pos:start]
        ltrim = text.startswith("{{-", start) and start + 3 < len(text) and text[start + 3] in " \t\r\n"
        inner_start = start + (3 if ltrim else 2)
        # find the closing }} outside quotes
        i, q = inner_start, None
        while i < len(text):
            c = text[i]
            if q:
                if c == "\\" and q == '"':
                    i += 2
                    continue
                if c == q:
                    q = None
            elif c in "\"`":
                q = c
            elif text.startswith("}}", i):
                break
            i += 1
        else:
            raise TemplateError(f"{name}:{line}: unclosed action")
        end = i
        rtrim = end - 2 >= inner_start and text[end - 1] == "-" and text[end - 2] in " \t\r\n"
        inner = text[inner_start:end - 1 if rtrim else end]
        out.append(["text", chunk, line])
        line += chunk.count("\n")
        if ltrim:
            out[-1][1] = out[-1][1].rstrip(" \t\r\n")
        out.append(["action", inner.strip(), line, rtrim])
        line += text[start:end + 2].count("\n")
        pos = end + 2
        if rtrim:
            m = re.match(r"[ \t\r\n]*", text[pos:])
            line += m.group(0).count("\n")
            pos += m.end()
    return out


# ----------------------------------------------------------------- parser ----

class Node:
    def __init__(self, kind, **kw):
        self.kind = kind
        self.__dict__.update(kw)


def parse_pipeline(toks, where):
    """Returns Node('pipe', decl=[vars], op, cmds=[[operands]])."""
    decl, op = [], None
    # $a := ... | $a, $b := ... | $a = ...
    for j, t in enumerate(toks):
        if t[0] in ("decl", "assign"):
            names = [x[1] for x in toks[:j] if x[0] == "var"]
            if not names or any(x[0] not in ("var", "comma") for x in toks[:j]):
                raise TemplateError(f"{where}: bad declaration")
            decl, op, toks = names, t[0], toks[j + 1:]
            break
        if t[0] not in ("var", "comma"):
            break
    cmds, cur, i = [], [], 0
    while i < len(toks):
        k, v = toks[i]
        if k == "pipe":
            cmds.append(cur)
            cur = []
            i += 1
            continue
        if k == "lp":
            depth, j = 1, i + 1
            while j < len(toks) and depth:
                depth += {"lp": 1, "rp": -1}.get(toks[j][0], 0)
                j += 1
            if depth:
                raise TemplateError(f"{where}: unbalanced parentheses")
            cur.append(Node("sub", pipe=parse_pipeline(toks[i + 1:j - 1], where)))
            i = j
            continue
        if k == "rp":
            raise TemplateError(f"{where}: unbalanced parentheses")
        cur.append(Node(k, value=v))
        i += 1
    cmds.append(cur)
    if any(not c for c in cmds):
        raise TemplateError(f"{where}: empty command in pipeline")
    return Node("pipe", decl=decl, op=op, cmds=cmds)


def parse(text, name):
    """Parses a template file into (body nodes, {define name: body})."""
    items = split_actions(text, name)
    defines = {}
    root = []
    stack = [("root", root, None)]       # (kind, list being filled, node)
    for it in items:
        if it[0] == "text":
            if it[1]:
                stack[-1][1].append(Node("text", text=it[1]))
            continue
        src, line = it[1], it[2]
        where = f"{name}:{line}"
        if src.startswith("/*"):
            if not src.endswith("*/"):
                raise TemplateError(f"{where}: comment must end with */ before }}}}")
            continue
        toks = tokenize(src, where)
        if not toks:
            raise TemplateError(f"{where}: empty action")
        head = toks[0]
        kw = head[1] if head[0] == "ident" else None
        if kw in ("if", "with", "range"):
            node = Node(kw, pipe=parse_pipeline(toks[1:], where), body=[], orelse=None, line=where, elifs=[])
            stack[-1][1].append(node)
            stack.append((kw, node.body, node))
        elif kw == "define":
            if len(toks) != 2 or toks[1][0] != "str":
                raise TemplateError(f"{where}: define needs a quoted name")
            body = []
            dname = json.loads(toks[1][1])
            if dname in defines:
                raise TemplateError(f"{where}: template {dname} defined twice")
            defines[dname] = body
            stack.append(("define", body, None))
        elif kw == "else":
            kind, _, node = stack[-1]
            if kind not in ("if", "with", "range", "elif"):
                raise TemplateError(f"{where}: else outside if/with/range")
            if len(toks) > 1 and toks[1] == ("ident", "if"):
                if kind not in ("if", "elif"):
                    raise TemplateError(f"{where}: else if after {kind}")
                owner = node
                sub = Node("if", pipe=parse_pipeline(toks[2:], where), body=[], orelse=None, line=where, elifs=[])
                owner.orelse = [sub]
                stack[-1] = ("elif", sub.body, sub)
            else:
                if node.orelse is not None:
                    raise TemplateError(f"{where}: second else")
                node.orelse = []
                stack[-1] = (kind + "-else", node.orelse, node)
        elif kw == "end":
            if len(stack) == 1:
                raise TemplateError(f"{where}: end without a block")
            stack.pop()
        elif kw in ("template", "block"):
            if len(toks) < 2 or toks[1][0] != "str":
                raise TemplateError(f"{where}: template needs a quoted name")
            pipe = parse_pipeline(toks[2:], where) if len(toks) > 2 else None
            stack[-1][1].append(Node("template", name=json.loads(toks[1][1]), pipe=pipe, line=where))
        else:
            stack[-1][1].append(Node("action", pipe=parse_pipeline(toks, where), line=where))
    if len(stack) != 1:
        raise TemplateError(f"{name}: {stack[-1][0]} block not closed with end")
    return root, defines


# --------------------------------------------------------------- renderer ----

class _NoneType:
    def __repr__(self):
        return "<none>"


_NONE = _NoneType()


class Renderer:
    def __init__(self, defines, tracker):
        self.defines = defines
        self.tracker = tracker
        self.depth = 0

    def field(self, obj, names, where, shown):
        for n in names:
            if isinstance(obj, VDict):
                path = f"{obj.path}.{n}"
                if n not in obj:
                    self.tracker.missing.append((path, where))
                    return None
                self.tracker.used.add(path)
                obj = obj[n]
            elif isinstance(obj, dict):
                if n not in obj:
                    raise TemplateError(f"{where}: {shown} has no field {n}")
                obj = obj[n]
            elif obj is None:
                raise TemplateError(f"{where}: nil pointer evaluating {shown}.{n}")
            else:
                raise TemplateError(f"{where}: cannot read field {n} of {type(obj).__name__} in {shown}")
        return obj

    def operand(self, op, dot, scope, where, final=_NONE):
        k = op.kind
        if k == "str":
            return json.loads(op.value)
        if k == "raw":
            return op.value[1:-1]
        if k == "num":
            return float(op.value) if "." in op.value else int(op.value)
        if k == "field":
            if op.value == ".":
                return dot
            return self.field(dot, op.value[1:].split("."), where, op.value)
        if k == "var":
            parts = op.value.split(".")
            name = parts[0]
            val = self.lookup(scope, name, where)
            return self.field(val, parts[1:], where, op.value) if len(parts) > 1 else val
        if k == "sub":
            return self.pipeline(op.pipe, dot, scope, where)
        if k == "ident":
            if op.value in ("true", "false"):
                return op.value == "true"
            if op.value == "nil":
                return None
            return self.call(op.value, [], dot, scope, where, final)
        raise TemplateError(f"{where}: unexpected {op.value}")

    def lookup(self, scope, name, where):
        for s in reversed(scope):
            if name in s:
                return s[name]
        raise TemplateError(f"{where}: undefined variable {name}")

    def call(self, fname, argops, dot, scope, where, final):
        if fname in ("and", "or"):
            vals = argops + ([final] if final is not _NONE else [])
            last = None
            for a in vals:
                v = a if not isinstance(a, Node) else self.operand(a, dot, scope, where)
                last = v
                if (fname == "and") != truthy(v):
                    return v
            return last
        args = [self.operand(a, dot, scope, where) for a in argops]
        if final is not _NONE:
            args.append(final)
        if fname == "include":
            if len(args) != 2:
                raise TemplateError(f"{where}: include needs a name and a context")
            return self.include(args[0], args[1], where)
        if fname == "tpl":
            raise TemplateError(f"{where}: tpl is not supported by this checker")
        f = FUNCS.get(fname)
        if f is None:
            raise TemplateError(f"{where}: function {fname} not defined (or not supported by test/deploy/gotmpl.py)")
        try:
            return f(*args)
        except (RenderFail, TemplateError):
            raise
        except Exception as e:   # wrong arity or argument types
            raise TemplateError(f"{where}: error calling {fname}: {e}")

    def command(self, cmd, dot, scope, where, final):
        first = cmd[0]
        if first.kind == "ident" and first.value not in ("true", "false", "nil"):
            return self.call(first.value, cmd[1:], dot, scope, where, final)
        if len(cmd) > 1 or final is not _NONE:
            raise TemplateError(f"{where}: can't give arguments to a non-function {getattr(first, 'value', '(...)')}")
        return self.operand(first, dot, scope, where)

    def pipeline(self, pipe, dot, scope, where):
        val = _NONE
        for cmd in pipe.cmds:
            val = self.command(cmd, dot, scope, where, val)
        if pipe.decl:
            if pipe.op == "decl":
                scope[-1][pipe.decl[-1]] = val
            else:
                for s in reversed(scope):
                    if pipe.decl[-1] in s:
                        s[pipe.decl[-1]] = val
                        break
                else:
                    raise TemplateError(f"{where}: undefined variable {pipe.decl[-1]}")
            return _NONE
        return val

    def include(self, name, ctx, where):
        body = self.defines.get(name)
        if body is None:
            raise TemplateError(f"{where}: no template {name!r}")
        self.depth += 1
        if self.depth > 50:
            raise TemplateError(f"{where}: include nests too deep")
        try:
            return self.render(body, ctx, [{"$": ctx}])
        finally:
            self.depth -= 1

    def render(self, nodes, dot, scope):
        out = []
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
            elif n.kind == "action":
                v = self.pipeline(n.pipe, dot, scope, n.line)
                if v is not _NONE and not n.pipe.decl:
                    out.append(go_str(v))
            elif n.kind == "template":
                ctx = self.pipeline(n.pipe, dot, scope, n.line) if n.pipe else None
                out.append(self.include(n.name, ctx, n.line))
            elif n.kind == "if":
                scope.append({})
                v = self.pipeline(n.pipe, dot, scope, n.line)
                if truthy(v):
                    out.append(self.render(n.body, dot, scope))
                elif n.orelse is not None:
                    out.append(self.render(n.orelse, dot, scope))
                scope.pop()
            elif n.kind == "with":
                scope.append({})
                v = self.pipeline(n.pipe, dot, scope, n.line)
                if truthy(v):
                    out.append(self.render(n.body, v, scope))
                elif n.orelse is not None:
                    out.append(self.render(n.orelse, dot, scope))
                scope.pop()
            elif n.kind == "range":
                out.append(self.range(n, dot, scope))
        return "".join(out)

    def range(self, n, dot, scope):
        pipe = n.pipe
        decl = pipe.decl
        inner = Node("pipe", decl=[], op=None, cmds=pipe.cmds)
        coll = self.pipeline(inner, dot, scope, n.line)
        consume(coll)
        if isinstance(coll, dict):
            pairs = [(k, coll[k]) for k in sorted(coll)]
        elif isinstance(coll, list):
            pairs = list(enumerate(coll))
        elif isinstance(coll, int) and not isinstance(coll, bool):
            pairs = [(i, i) for i in range(coll)]
        elif coll is None:
            pairs = []
        else:
            raise TemplateError(f"{n.line}: range can't iterate over {go_str(coll)}")
        if not pairs:
            return self.render(n.orelse, dot, scope) if n.orelse is not None else ""
        out = []
        for k, v in pairs:
            s = {}
            if len(decl) == 1:
                s[decl[0]] = v
            elif len(decl) == 2:
                s[decl[0]], s[decl[1]] = k, v
            scope.append(s)
            out.append(self.render(n.body, v, scope))
            scope.pop()
        return "".join(out)


def render_chart(files, values, chart, release, tracker):
    """files: {name: text} of templates/. Returns {name: rendered text}
    for every file not starting with '_' (NOTES.txt included)."""
    defines, bodies = {}, {}
    for name, text in sorted(files.items()):
        body, d = parse(text, name)
        for k in d:
            if k in defines:
                raise TemplateError(f"{name}: template {k} defined twice")
        defines.update(d)
        bodies[name] = body
    top = {
        "Values": wrap_values(values, "Values", tracker),
        "Chart": {"Name": chart["name"], "Version": chart["version"],
                  "AppVersion": chart.get("appVersion", ""), "Description": chart.get("description", "")},
        "Release": {"Name": release["name"], "Namespace": release["namespace"], "Service": "Helm",
                    "IsInstall": True, "IsUpgrade": False, "Revision": 1},
        "Capabilities": {"KubeVersion": {"Version": "v1.30.0", "Major": "1", "Minor": "30"}},
        "Template": {"BasePath": "kafscale/templates"},
    }
    r = Renderer(defines, tracker)
    out = {}
    for name, body in bodies.items():
        if name.split("/")[-1].startswith("_"):
            continue
        tracker.template = name
        top["Template"]["Name"] = "kafscale/templates/" + name
        out[name] = r.render(body, top, [{"$": top}])
    return out
