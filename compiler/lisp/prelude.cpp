// prelude.cpp — the Lisp prelude: the primitives of spec section 7 (shared/spec/lisp.md)
// written in Weft over the existing builtins and modules.
//
// The VM compiles this text once, as the module `__lisp__` (sequential: nothing deferred),
// the first time a lowered `.wlisp` module imports it; each lowered module imports only the
// functions it uses (as `__lp_<name>`, compiler/lisp/lower.cpp). Every function is `l_` +
// the Weft name of its primitive, so none shadows the builtin it calls. Times are
// milliseconds here and seconds in Weft. The outside world failing (I/O, network, HTTP status,
// SQL, closed channels, timeouts) gives error values; bugs and configuration errors
// (PermissionDenied, TypeError, ValueError) are raised.
#include "compiler/lisp/lower.h"

namespace weft::lisp {

std::string_view prelude_source() {
    static const char* const kSource = R"WEFT(
import fs
import http
import json
import re
import db

KW_ERROR = __lisp_kw("error")
KW_OK = __lisp_kw("ok")
KW_CHANNEL = __lisp_kw("channel")
KW_VALUE = __lisp_kw("value")
KW_FILE = __lisp_kw("file")
KW_LINE = __lisp_kw("line")
KW_TEXT = __lisp_kw("text")

def _secs(ms):
    if ms is None:
        return None
    return ms / 1000

def _timeout_error(ms):
    return TimeoutError("timeout after " + __lisp_show(ms, False) + "ms")

# An error of the outside world becomes a value; a bug or a configuration error is raised.
def _outside(e):
    if isinstance(e, PermissionDenied) or isinstance(e, TypeError) or isinstance(e, ValueError):
        raise e
    return e

def _seq(xs):
    if xs is None:
        return []
    if type(xs) == list:
        return xs
    if type(xs) == dict:
        return [[k, v] for k, v in xs.items()]
    return list(xs)

# ---- arithmetic -------------------------------------------------------------
def l_add(*xs):
    acc = 0
    for x in xs:
        acc = acc + x
    return acc

def l_sub(*xs):
    if len(xs) == 0:
        raise TypeError("- needs at least 1 argument")
    if len(xs) == 1:
        return -xs[0]
    acc = xs[0]
    for x in xs[1:]:
        acc = acc - x
    return acc

def l_mul(*xs):
    acc = 1
    for x in xs:
        acc = acc * x
    return acc

def l_div(*xs):
    if len(xs) == 0:
        raise TypeError("/ needs at least 1 argument")
    if len(xs) == 1:
        return 1 / xs[0]
    acc = xs[0]
    for x in xs[1:]:
        acc = acc / x
    return acc

def l_quotient(a, b):
    return a // b

def l_mod(a, b):
    return a % b

def l_abs_(x):
    return abs(x)

def l_min_(x, *xs):
    return min([x] + list(xs))

def l_max_(x, *xs):
    return max([x] + list(xs))

def l_eq(x, *xs):
    for y in xs:
        if not __lisp_eq(x, y):
            return False
        x = y
    return True

def l_not_eq(x, *xs):
    return not l_eq(x, *xs)

def l_lt(x, *xs):
    for y in xs:
        if not (x < y):
            return False
        x = y
    return True

def l_gt(x, *xs):
    for y in xs:
        if not (x > y):
            return False
        x = y
    return True

def l_le(x, *xs):
    for y in xs:
        if not (x <= y):
            return False
        x = y
    return True

def l_ge(x, *xs):
    for y in xs:
        if not (x >= y):
            return False
        x = y
    return True

def l_not_(x):
    return x is None or x is False

# ---- predicates ---------------------------------------------------------------
def l_nil_p(x):
    return x is None

def l_number_p(x):
    return type(x) == int or type(x) == float

def l_string_p(x):
    return type(x) == str

def l_keyword_p(x):
    return __lisp_is_keyword(x)

def l_list_p(x):
    return type(x) == list or type(x) == tuple

def l_map_p(x):
    return type(x) == dict

def l_fn_p(x):
    return __lisp_fn_p(x)

def l_empty_p(x):
    return x is None or len(x) == 0

def l_error_p(x):
    return is_error(x) or (type(x) == dict and KW_ERROR in x)

# ---- lists ----------------------------------------------------------------------
def l_list_(*xs):
    return list(xs)

def l_cons(x, xs):
    return [x] + _seq(xs)

def l_first(xs):
    xs = _seq(xs)
    if len(xs) == 0:
        return None
    return xs[0]

def l_rest(xs):
    xs = _seq(xs)
    return xs[1:]

def l_nth(xs, i, *default):
    xs = _seq(xs)
    if i < 0 or i >= len(xs):
        if len(default) > 0:
            return default[0]
        raise IndexError("nth: index " + str(i) + " out of range for a list of " + str(len(xs)))
    return xs[i]

def l_last(xs):
    xs = _seq(xs)
    if len(xs) == 0:
        return None
    return xs[-1]

def l_append(*xss):
    out = []
    for xs in xss:
        out = out + _seq(xs)
    return out

def l_reverse(xs):
    return list(reversed(_seq(xs)))

def l_length(xs):
    if xs is None:
        return 0
    return len(xs)

def l_range_(a, *more):
    if len(more) == 0:
        return list(range(a))
    if len(more) == 1:
        return list(range(a, more[0]))
    return list(range(a, more[0], more[1]))

def l_map_(f, xs, *more):
    if len(more) == 0:
        return [f(x) for x in _seq(xs)]
    return [f(*t) for t in zip(_seq(xs), *[_seq(m) for m in more])]

def l_filter_(f, xs):
    return [x for x in _seq(xs) if __lisp_truthy(f(x))]

def l_reduce(f, xs, *init):
    xs = _seq(xs)
    if len(init) > 0:
        acc = init[0]
        start = 0
    else:
        if len(xs) == 0:
            return f()
        acc = xs[0]
        start = 1
    for x in xs[start:]:
        acc = f(acc, x)
    return acc

def l_for_each(f, xs, *more):
    if len(more) == 0:
        for x in _seq(xs):
            f(x)
    else:
        for t in zip(_seq(xs), *[_seq(m) for m in more]):
            f(*t)
    return None

def l_sort(xs, *key):
    if len(key) > 0:
        return sorted(_seq(xs), key=key[0])
    return sorted(_seq(xs))

def l_apply(f, *args):
    if len(args) == 0:
        return f()
    return f(*args[:-1], *_seq(args[-1]))

# ---- maps ---------------------------------------------------------------------------
def l_map_get(m, k, *default):
    return __lisp_get(m, k, *default)

def l_assoc(m, *kvs):
    if len(kvs) % 2 != 0:
        raise TypeError("assoc needs key value pairs, got an odd number of arguments")
    d = {} if m is None else dict(m)
    i = 0
    while i < len(kvs):
        d[kvs[i]] = kvs[i + 1]
        i += 2
    return d

def l_dissoc(m, *ks):
    d = {} if m is None else dict(m)
    for k in ks:
        if k in d:
            d.pop(k)
        elif __lisp_is_keyword(k) and k.name in d:
            d.pop(k.name)
    return d

def l_keys(m):
    if m is None:
        return []
    return list(m.keys())

def l_vals(m):
    if m is None:
        return []
    return list(m.values())

def l_contains_p(m, k):
    if m is None:
        return False
    if type(m) == dict:
        return k in m or (__lisp_is_keyword(k) and k.name in m)
    return k in m

def l_merge(*ms):
    d = {}
    for m in ms:
        if m is not None:
            d.update(m)
    return d

# ---- strings --------------------------------------------------------------------------
def l_str_(*xs):
    return "".join([__lisp_show(x, False) for x in xs])

def l_repr_(x):
    return __lisp_show(x, True)

def l_string_append(*xs):
    for x in xs:
        if type(x) != str:
            raise TypeError("string-append needs strings, got " + __lisp_show(x, True))
    return "".join(list(xs))

def l_string_lines(s):
    return s.splitlines()

def l_string_contains_p(s, sub):
    return sub in s

def l_string_starts_with_p(s, prefix):
    return s.startswith(prefix)

def l_string_trim(s):
    return s.strip()

def l_string_upcase(s):
    return s.upper()

def l_string_downcase(s):
    return s.lower()

def l_number_to_string(n):
    if not l_number_p(n):
        raise TypeError("number->string needs a number, got " + __lisp_show(n, True))
    return __lisp_show(n, False)

def l_string_split(s, *sep):
    if len(sep) > 0 and sep[0] is not None:
        return s.split(sep[0])
    return s.split()

def l_string_join(xs, *sep):
    return (sep[0] if len(sep) > 0 else "").join([__lisp_show(x, False) for x in _seq(xs)])

def l_substring(s, start, *end):
    n = len(s)
    e = end[0] if len(end) > 0 else n
    if start < 0 or start > n or e < start or e > n:
        raise IndexError("substring: range " + str(start) + ".." + str(e) + " out of bounds for a string of length " + str(n))
    return s[start:e]

def l_string_to_number(s):
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return None

# ---- errors --------------------------------------------------------------------------------
def l_error_(msg):
    return error(msg)

def l_error_msg(x):
    if is_error(x):
        return x.message
    if type(x) == dict and KW_ERROR in x:
        return x[KW_ERROR]
    return None

def l_error_kind(x):
    if is_error(x):
        return x.kind
    if type(x) == dict and KW_ERROR in x:
        return "Error"
    return None

def l_raise_(x):
    if is_error(x):
        raise x
    if type(x) == dict and KW_ERROR in x:
        raise Error(__lisp_show(x[KW_ERROR], False))
    if type(x) == str:
        raise Error(x)
    raise TypeError("raise needs an error value, a map with :error or a string, got " + __lisp_show(x, True))

# ---- output ----------------------------------------------------------------------------------
def l_println(*xs):
    print(" ".join([__lisp_show(x, False) for x in xs]))

def l_print_(*xs):
    print(" ".join([__lisp_show(x, False) for x in xs]), end="")

def l_prn(*xs):
    print(" ".join([__lisp_show(x, True) for x in xs]))

# ---- concurrency ------------------------------------------------------------------------------
def l_spawn_(f, *args):
    __lisp_check_arity(f, len(args), "spawn")
    spawn f(*args)
    return None

# Runs f(args) and sends {:ok v}, or {:error "msg"} if it raises or returns an error value.
def _linked(ch, f, args):
    try:
        v = f(*args)
    except Error as e:
        ch.send({KW_ERROR: e.message})
        ch.close()
        return None
    if l_error_p(v):
        ch.send({KW_ERROR: l_error_msg(v)})
    else:
        ch.send({KW_OK: v})
    ch.close()
    return None

def l_spawn_link(f, *args):
    __lisp_check_arity(f, len(args), "spawn-link")
    ch = channel(1)
    spawn _linked(ch, f, args)
    return ch

# A missing capability is a configuration error, raised even from a slot (spec section 9).
def _no_denied(results):
    for r in results:
        if isinstance(r, PermissionDenied):
            raise r
    return results

# An item that ran out of time is the TimeoutError value "timeout after Nms" in its slot.
def _item_timeouts(results, ms):
    if ms is None:
        return results
    return [_timeout_error(ms) if isinstance(r, TimeoutError) and r.message.startswith("item timed out") else r for r in results]

def l_parallel_map(f, xs, max_threads=64, timeout=None):
    return _no_denied(_item_timeouts(parallel_map(f, _seq(xs), workers=max_threads, timeout=_secs(timeout), errors="collect"), timeout))

def l_parallel_filter(pred, xs, max_threads=64, timeout=None):
    return parallel_filter(lambda x: __lisp_truthy(pred(x)), _seq(xs), workers=max_threads, timeout=_secs(timeout))

def _grep_file(rx, p):
    try:
        text = fs.read_file(p)
    except IOError as e:
        return [{KW_FILE: p, KW_ERROR: e.message}]
    except ValueError as e:
        return [{KW_FILE: p, KW_ERROR: e.message}]
    out = []
    n = 0
    for line in text.splitlines():
        n += 1
        if rx.search(line) is not None:
            out.append({KW_FILE: p, KW_LINE: n, KW_TEXT: line})
    return out

def l_parallel_grep(pattern, paths, max_threads=64):
    rx = re.compile(pattern)
    out = []
    for found in parallel_map(lambda p: _grep_file(rx, p), _seq(paths), workers=max_threads):
        out.extend(found)
    return out

def l_timeout_(ms, f):
    try:
        with timeout(ms / 1000):
            return f()
    except TimeoutError as e:
        return _timeout_error(ms)

def l_atom_(v):
    return atom(v)

def l_atom_deref(a):
    return a.get()

def l_atom_reset(a, v):
    a.reset(v)
    return v

def l_atom_swap(a, f, *args):
    return a.swap(lambda v: f(v, *args))

def l_compare_and_set(a, old, new):
    return a.compare_and_set(old, new)

def l_make_channel(*n):
    if len(n) == 0 or n[0] is None or n[0] == 0:
        return channel()
    return channel(n[0])

def l_channel_send(ch, v):
    try:
        ch.send(v)
    except ChannelClosed:
        return ChannelClosed("channel closed")
    return None

def l_channel_recv(ch, timeout=None):
    try:
        if timeout is None:
            return ch.recv()
        return ch.recv(timeout=timeout / 1000)
    except ChannelClosed:
        return ChannelClosed("channel closed")
    except TimeoutError as e:
        # The option's deadline, or the program's default timeout (set-default-timeout!).
        return _timeout_error(timeout) if timeout is not None else e

def l_channel_close(ch):
    if not ch.closed:
        ch.close()
    return None

def l_select_(*chs, timeout=None):
    live = list(chs)
    if len(live) == 1 and (type(live[0]) == list or type(live[0]) == tuple):
        live = list(live[0])
    while len(live) > 0:
        try:
            if timeout is None:
                got = select(live)
            else:
                got = select(live, timeout=timeout / 1000)
            return {KW_CHANNEL: got[0], KW_VALUE: got[1]}
        except ChannelClosed:
            live = [c for c in live if not (c.closed and len(c) == 0)]
        except TimeoutError as e:
            return _timeout_error(timeout) if timeout is not None else e
    return ChannelClosed("channel closed")

def l_make_worker_pool(n):
    return worker_pool(n)

def l_worker_pool_submit(pool, f, *args):
    __lisp_check_arity(f, len(args), "worker-pool-submit")
    ch = channel(1)
    try:
        pool.submit(_linked, ch, f, args)
    except Error as e:
        if "shut down" in e.message:
            raise Error("worker pool is shut down")
        raise e
    return ch

def l_worker_pool_shutdown(pool):
    pool.shutdown(wait=True)
    return None

def l_stream_map(f, src, workers=4, ordered=False):
    return stream_map(f, src, workers=workers, ordered=__lisp_truthy(ordered), errors="collect")

def l_set_max_threads(n):
    set_max_workers(n)
    return None

def l_set_default_timeout(ms):
    set_default_timeout(_secs(ms))
    return None

def l_restrict_(caps, f):
    kw = {}
    for k, v in caps.items():
        name = k.name if __lisp_is_keyword(k) else k
        kw[name] = v
    with restrict(**kw):
        return f()

# ---- the outside world -----------------------------------------------------------------------------
def _headers(h):
    if h is None:
        return None
    return {(k.name if __lisp_is_keyword(k) else k): v for k, v in h.items()}

def _response_text(r):
    try:
        r.raise_for_status()
    except Error as e:
        return e
    return r.text

def l_http_get(url, timeout=None, headers=None):
    try:
        r = http.get(url, timeout=_secs(timeout), headers=_headers(headers))
    except TimeoutError as e:
        return _timeout_error(timeout) if timeout is not None else e
    except Error as e:
        return _outside(e)
    return _response_text(r)

def l_http_post(url, body, timeout=None, headers=None):
    try:
        if type(body) == str or type(body) == bytes:
            r = http.post(url, data=body, timeout=_secs(timeout), headers=_headers(headers))
        else:
            r = http.post(url, data=json.dump(body), timeout=_secs(timeout), headers=_headers({"content-type": "application/json"} if headers is None else headers))
    except TimeoutError as e:
        return _timeout_error(timeout) if timeout is not None else e
    except Error as e:
        return _outside(e)
    return _response_text(r)

def l_read_file(p):
    try:
        return fs.read_file(p)
    except IOError as e:
        return e
    except ValueError as e:  # not text (invalid UTF-8): the file is what failed, not the program
        return e

def l_write_file(p, s):
    try:
        fs.write_file(p, s)
    except IOError as e:
        return e
    return None

def l_file_size(p):
    try:
        return fs.file_size(p)
    except IOError as e:
        return e

def l_glob_(pattern):
    return fs.glob(pattern)

def l_db_open(*path):
    try:
        return db.sqlite(path[0] if len(path) > 0 else ":memory:")
    except IOError as e:
        return e

def l_db_query(c, sql, *params):
    try:
        return c.query(sql, list(params[0]) if len(params) > 0 else [])
    except IOError as e:
        return e

def l_db_exec(c, sql, *params):
    try:
        return c.execute(sql, list(params[0]) if len(params) > 0 else [])
    except IOError as e:
        return e

def l_json_parse(s):
    return json.parse(s)

def l_json_str(v):
    return json.dump(v)

def l_env(name, *default):
    return env(name, default[0] if len(default) > 0 else None)

l_args_ = args

def l_now():
    return int(now() * 1000)

def l_sleep_(ms):
    sleep(ms / 1000)
    return None
)WEFT";
    return kSource;
}

}  // namespace weft::lisp
