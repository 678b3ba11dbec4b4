// llm.cpp — the `llm(prompt, ...)` builtin (spec section 12): an OpenAI-compatible
// chat-completions client (OpenAI, vLLM, llama.cpp's server, Ollama all speak it).
//
//   llm(prompt=None, model=None, system=None, messages=None, temperature=None,
//       max_tokens=None, json=False, stream=False, timeout=60, base_url=None)
//
// The request goes through the `http` module's client (stdlib::http_exchange): the calling
// task parks, connections are pooled, --allow-net is checked for the endpoint's host. The
// endpoint is `base_url` or the environment's WEFT_LLM_URL (reading it needs --allow-env), the
// key WEFT_LLM_KEY when the program may read it, the model `model` or WEFT_LLM_MODEL.
//
// It is a blocking builtin: in a deferral position it is deferred like a Weft call, so
// `[llm(p) for p in prompts]` runs the calls at once. Rate limits (429) and server errors
// (500, 502, 503, 504) are retried with exponential backoff (0.5 s doubling, at most 8 s),
// or after the server's Retry-After, for as long as `timeout` allows; other statuses raise
// NetworkError with the server's message. json=True asks for a JSON object
// (response_format json_object) and json=<a JSON Schema dict> for one matching the schema
// (response_format json_schema); the reply is then parsed, and a reply that is not JSON is a
// ValueError carrying the text. stream=True returns a channel of text chunks, fed from the
// server-sent events by a task of the caller's scope as they arrive.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/capabilities.h"
#include "vm/interp.h"
#include "vm/lib_internal.h"
#include "vm/tasks.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

using stdlib::Params;
using Clock = std::chrono::steady_clock;

constexpr double kDefaultTimeout = 60;

// The endpoint and the request body, ready to send (plain strings: the streaming task may run
// on another thread).
struct LlmCall {
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    double timeout = kDefaultTimeout;
    bool json = false;
};

// An environment variable the program may read (capability held), else "".
std::string env_if_allowed(CallContext& cx, const char* name) {
    auto caps = cx.capabilities();
    if (!caps || !caps->allows_env(name)) return "";
    const char* v = getenv(name);
    return v ? v : "";
}

Value str_key(const char* k) {
    return make_str(k);
}

// The JSON the server answered, or ValueError.
Value parse_reply(const std::string& body, const std::string& url) {
    try {
        return stdlib::json_parse_text(stdlib::utf8_lossy(body));
    } catch (WeftError&) {
        throw WeftError(ErrorKind::NetworkError,
                        "llm(): " + url + " did not answer JSON: " + body.substr(0, 200));
    }
}

// Looks up a path of keys/indexes; None when something is missing.
Value dig(Value v, std::initializer_list<Value> path) {
    for (const Value& k : path) {
        if (k.is_int()) {
            if (!v.is(ObjType::List) || size_t(k.as_int()) >= v.as<ListObj>()->items.size()) return Value();
            v = v.as<ListObj>()->items[size_t(k.as_int())];
        } else {
            if (!v.is(ObjType::Dict)) return Value();
            Value key = k;
            if (!contains(v, key)) return Value();
            v = get_item(v, key);
        }
    }
    return v;
}

std::string header_of(const stdlib::HttpResult& r, const char* name) {
    for (auto& [k, v] : r.headers)
        if (k == name) return v;
    return "";
}

// The server's error message from an OpenAI-style error body, or the body's start.
std::string error_text(const stdlib::HttpResult& r) {
    try {
        Value v = stdlib::json_parse_text(stdlib::utf8_lossy(r.body));
        Value m = dig(v, {str_key("error"), str_key("message")});
        if (m.is(ObjType::Str)) return m.as<StrObj>()->data;
    } catch (WeftError&) {
    }
    return stdlib::utf8_lossy(r.body.substr(0, 200));
}

bool retryable(long status) {
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// Sends the request, retrying rate limits and server errors within the timeout. With
// `on_data`, a successful response's body goes there as it arrives.
stdlib::HttpResult exchange(CallContext& cx, const LlmCall& c,
                            const std::function<void(long, std::string&)>& on_data = {}) {
    auto start = Clock::now();
    double delay = 0.5;
    for (int attempt = 1;; ++attempt) {
        double left = c.timeout - std::chrono::duration<double>(Clock::now() - start).count();
        if (left <= 0)
            throw WeftError(ErrorKind::TimeoutError, "llm(): no answer from " + c.url + " within " +
                                                         float_repr(c.timeout) + " seconds");
        stdlib::HttpExchange x;
        x.url = c.url;
        x.headers = c.headers;
        x.body = c.body;
        x.content_type = "application/json";
        x.timeout = left;
        std::string failed_body;
        if (on_data)
            x.on_data = [&](long status, std::string& piece) {
                if (status == 200)
                    on_data(status, piece);
                else
                    failed_body += piece;  // an error to read whole
            };
        stdlib::HttpResult r = stdlib::http_exchange(cx, x);
        if (on_data && r.status != 200) r.body = std::move(failed_body);
        if (r.status == 200) return r;
        std::string why = std::to_string(r.status) + " from " + c.url + ": " + error_text(r);
        if (!retryable(r.status))
            throw WeftError(ErrorKind::NetworkError, "llm(): " + why);
        // Retry-After: seconds (an HTTP date is treated as "now").
        std::string after = header_of(r, "retry-after");
        double wait = delay;
        if (!after.empty()) {
            char* end = nullptr;
            double s = strtod(after.c_str(), &end);
            if (end != after.c_str() && std::isfinite(s) && s >= 0) wait = s;
        }
        left = c.timeout - std::chrono::duration<double>(Clock::now() - start).count();
        if (wait >= left)
            throw WeftError(ErrorKind::NetworkError, "llm(): " + why + " (gave up after " +
                                                         std::to_string(attempt) +
                                                         (attempt == 1 ? " attempt" : " attempts") +
                                                         ": the next would pass the timeout)");
        rt::sleep_for(wait);
        delay = std::min(delay * 2, 8.0);
    }
}

// The reply's text (or parsed JSON) from a complete response.
Value reply_value(const stdlib::HttpResult& r, const LlmCall& c) {
    Value v = parse_reply(r.body, c.url);
    Value content = dig(v, {str_key("choices"), Value::integer(0), str_key("message"), str_key("content")});
    if (!content.is(ObjType::Str))
        throw WeftError(ErrorKind::NetworkError,
                        "llm(): the answer of " + c.url + " has no choices[0].message.content: " +
                            stdlib::utf8_lossy(r.body.substr(0, 200)));
    if (!c.json) return content;
    const std::string& text = content.as<StrObj>()->data;
    try {
        return stdlib::json_parse_text(text);
    } catch (WeftError& e) {
        throw WeftError(ErrorKind::ValueError, "llm(): the model's reply is not valid JSON (" + e.message +
                                                   "): " + text);
    }
}

// ---------------------------------------------------------------------------
// stream=True: a task reads the server-sent events and sends each text piece to a channel.

struct StreamJob : OpaqueObj {
    LlmCall call;
    Value channel;
    explicit StreamJob(const OpaqueClass* c) : OpaqueObj(c) {}
};
void stream_job_share(OpaqueObj* self) {
    share(static_cast<StreamJob*>(self)->channel);
}
const OpaqueClass kStreamJobClass{"_LlmStream", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                  stream_job_share};

// Calls a method of a host object (the channel's send/close) from C++.
Value call_host_method(CallContext& cx, Value& obj, const char* name, std::vector<Value> args) {
    for (const MethodInfo* m = obj.as<OpaqueObj>()->cls->methods; m && m->name; ++m)
        if (strcmp(m->name, name) == 0) return m->fn(cx, obj, CallArgs{args, {}});
    throw WeftError(ErrorKind::AttributeError, std::string("no method ") + name);
}

Value run_stream(CallContext& cx, Value& self, const CallArgs&) {
    auto* job = stdlib::self_as<StreamJob>(self);
    Value ch = job->channel;
    struct Close {
        CallContext& cx;
        Value& ch;
        ~Close() {
            try {
                call_host_method(cx, ch, "close", {});
            } catch (...) {
            }
        }
    } close{cx, ch};
    std::string pending;  // bytes of an event line not complete yet
    bool done = false;
    exchange(cx, job->call, [&](long, std::string& piece) {
        pending += piece;
        size_t nl;
        while (!done && (nl = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.rfind("data:", 0) != 0) continue;  // comments, event names, blank lines
            std::string data = line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
            if (data == "[DONE]") {
                done = true;
                break;
            }
            Value ev = parse_reply(data, job->call.url);
            Value text = dig(ev, {str_key("choices"), Value::integer(0), str_key("delta"), str_key("content")});
            if (text.is(ObjType::Str) && !text.as<StrObj>()->data.empty())
                call_host_method(cx, ch, "send", {text});
        }
    });
    return Value();
}

// ---------------------------------------------------------------------------

Value bi_llm(CallContext& cx, const CallArgs& a) {
    Params p(a, "llm",
             {"prompt", "model", "system", "messages", "temperature", "max_tokens", "json", "stream",
              "timeout", "base_url"},
             0);
    LlmCall c;
    // Endpoint, key and model.
    std::string base;
    if (p.has(9)) {
        base = p.str(9);
    } else {
        require_env(cx, "WEFT_LLM_URL");
        const char* u = getenv("WEFT_LLM_URL");
        if (!u || !*u)
            throw WeftError(ErrorKind::ValueError,
                            "llm(): no endpoint: set WEFT_LLM_URL (e.g. http://127.0.0.1:8080/v1) or pass base_url=");
        base = u;
    }
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    c.url = base.size() >= 17 && base.compare(base.size() - 17, 17, "/chat/completions") == 0
                ? base
                : base + "/chat/completions";
    std::string key = env_if_allowed(cx, "WEFT_LLM_KEY");
    if (!key.empty()) c.headers.emplace_back("Authorization", "Bearer " + key);
    std::string model = p.has(1) ? p.str(1) : env_if_allowed(cx, "WEFT_LLM_MODEL");
    if (p.has(8)) {
        double t = p.number(8);
        if (std::isnan(t) || t <= 0) throw WeftError(ErrorKind::ValueError, "llm(): timeout must be a positive number of seconds");
        c.timeout = t;
    }
    bool stream = p.flag_or(7, false);
    // Messages: messages=, then system=, then the prompt as the user's last word.
    std::vector<Value> msgs;
    auto message = [](const char* role, Value content) {
        Value m = make_dict();
        set_item(m, make_str("role"), make_str(role));
        set_item(m, make_str("content"), std::move(content));
        return m;
    };
    if (p.has(2)) msgs.push_back(message("system", make_str(p.str(2))));
    if (p.has(3)) {
        const Value* ms = p.get(3);
        if (!ms->is(ObjType::List)) p.bad(3, "a list of {'role': ..., 'content': ...} dicts");
        for (auto& m : ms->as<ListObj>()->items) {
            if (!m.is(ObjType::Dict)) p.bad(3, "a list of {'role': ..., 'content': ...} dicts");
            msgs.push_back(m);
        }
    }
    if (p.has(0)) msgs.push_back(message("user", make_str(p.str(0))));
    if (msgs.empty()) throw WeftError(ErrorKind::TypeError, "llm() needs a prompt or messages=");
    Value req = make_dict();
    set_item(req, make_str("model"), make_str(model.empty() ? "default" : model));
    set_item(req, make_str("messages"), make_list(std::move(msgs)));
    if (p.has(4)) set_item(req, make_str("temperature"), Value::number(p.number(4)));
    if (p.has(5)) set_item(req, make_str("max_tokens"), Value::integer(p.integer(5)));
    if (p.has(6)) {
        const Value* j = p.get(6);
        Value format = make_dict();
        if (j->is(ObjType::Dict)) {
            // A JSON Schema: OpenAI's structured outputs.
            Value js = make_dict();
            set_item(js, make_str("name"), make_str("response"));
            set_item(js, make_str("schema"), *j);
            set_item(format, make_str("type"), make_str("json_schema"));
            set_item(format, make_str("json_schema"), js);
            c.json = true;
        } else if (j->is_bool()) {
            c.json = j->as_bool();
            set_item(format, make_str("type"), make_str("json_object"));
        } else {
            p.bad(6, "a bool or a JSON Schema (dict)");
        }
        if (c.json) set_item(req, make_str("response_format"), format);
    }
    if (stream) {
        if (c.json) throw WeftError(ErrorKind::ValueError, "llm(): stream=True returns text chunks; it does not go with json=");
        set_item(req, make_str("stream"), Value::boolean(true));
    }
    c.body = stdlib::json_dump_text(cx, req);
    if (!stream) return reply_value(exchange(cx, c), c);

    // The channel first (its task needs it), then the task that fills it.
    auto& in = static_cast<Interp&>(cx);
    auto it = in.vm().builtin_index.find("channel");
    Value ch = cx.call(in.vm().builtins[size_t(it->second)], std::vector<Value>{Value::integer(16)});
    auto* job = new StreamJob(&kStreamJobClass);
    Value jobv = Value::adopt(job);
    job->call = std::move(c);
    job->channel = ch;
    Value fn = stdlib::bound_native("llm stream", run_stream, jobv, nullptr);
    spawn_task(in, fn, {}, {}, {}, false);
    return ch;
}

}  // namespace

void register_llm_builtin(Vm& vm) {
    auto* o = new NativeObj("llm", bi_llm);
    o->kwargs = kAnyKeywords;
    o->blocking = true;  // deferred like a Weft call (spec section 5): calls run at once
    vm.add_builtin("llm", Value::adopt(o));
}

}  // namespace weft
