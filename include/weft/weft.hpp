// weft.hpp — embedding Weft in a C++ program.
//
// A host creates a weft::Engine (an isolated Weft world: its modules, globals, capabilities,
// limits and output), registers host functions, modules and types, and runs Weft code with
// exec / eval / call / call_async. Several Engines may live in one process, on their own worker
// threads or sharing one weft::Runtime. Values cross the boundary by conversion
// (weft::convert<T>); errors cross as C++ exceptions (ScriptError, CompileError, Interrupted,
// LimitExceeded) one way and as Weft errors the other (weft::Raise, standard exceptions mapped).
// The guide is docs/embedding.md; the design is spec section 14.
//
// This header includes no Boost and no private header: everything behind it is pimpl.
//
// Ownership and thread-safety:
//   Runtime      shared_ptr, shared by Engines; any thread; destroy after its Engines.
//   Engine       the host's (not copyable); every member from any thread, concurrently. The
//                blocking members (run_file, exec, eval, call, try_call, Future::get) must not
//                be called from a thread running Weft code (inside a host function): UsageError.
//   Value        reference counted, immutable; copy, read and drop on any thread. A Value
//                keeps its Engine's core alive (after ~Engine, calling a function throws
//                EngineClosed; reading data works).
//   host functions  owned by the Engine; called concurrently from several workers unless
//                DefOptions::serialized.
//   Completion   move-only; resolve or reject once, from any thread.
//   Future       the host's; any thread; get() once.
//   host objects shared_ptr<T> shared by Weft values and the host; concurrent method calls.
//
// Naming: the API lives in namespace weft (an inline namespace `api` inside it, which only the
// library itself sees as a plain namespace: Weft's internals also live in namespace weft and
// some of their names, such as weft::Value, would otherwise clash inside the library).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 2
#define WEFT_VERSION_PATCH 0

#if defined(WEFT_BUILDING_LIB)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

// Inside the project (the library itself, and the command line, WEFT_INTERNAL_API) the VM's own
// weft::Value lives beside this API's: there its names stay in weft::api, not inline.
namespace weft {
#if defined(WEFT_BUILDING_LIB) || defined(WEFT_INTERNAL_API)
namespace api {
#else
inline namespace api {
#endif

struct Version {
    int major, minor, patch;
};
/// The linked library's version (compare with WEFT_VERSION_* at startup).
WEFT_API Version version() noexcept;

class Value;
class Engine;
class Context;
template <class T, class Enable = void>
struct convert;

namespace detail {
struct ValueRep;
struct EngineCore;
struct RuntimeImpl;
struct CompletionCore;
struct FutureCore;
struct ProgramSettings;  // the command line's own settings (embed/program.h; not for hosts)
}  // namespace detail

// ------------------------------------------------------------------------------------ errors

/// Base of the exceptions the API throws (except UsageError).
class WEFT_API Exception : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Source that does not compile. what(): "app.weft:3:7: expected ':'" and the source line.
class WEFT_API CompileError : public Exception {
  public:
    CompileError(std::string what, std::string file, int line, int column, std::string message)
        : Exception(std::move(what)), file_(std::move(file)), line_(line), column_(column),
          message_(std::move(message)) {}
    const std::string& file() const noexcept { return file_; }
    int line() const noexcept { return line_; }
    int column() const noexcept { return column_; }
    const std::string& message() const noexcept { return message_; }

  private:
    std::string file_;
    int line_, column_;
    std::string message_;
};

/// An uncaught Weft error of a call (pybind11's error_already_set).
class WEFT_API ScriptError : public Exception {
  public:
    ScriptError(std::string what, std::vector<std::string> kinds, std::string message,
                std::string trace, std::shared_ptr<const detail::ValueRep> value,
                std::vector<ScriptError> errors = {});
    /// "ValueError", "ErrorGroup", "Cancelled", a user error struct's name.
    std::string_view kind() const noexcept {
        if (kinds_.empty()) return "Error";
        return kinds_[0];
    }
    /// The kind or any base ("Error" matches every catchable error).
    bool is(std::string_view kind) const noexcept;
    const std::string& message() const noexcept { return message_; }
    /// What `weft run` prints for it: "Traceback ...", frames, "Kind: message".
    const std::string& trace() const noexcept { return trace_; }
    /// The error value itself.
    Value value() const;
    /// Members of an ErrorGroup / PartialFailure (empty otherwise).
    const std::vector<ScriptError>& errors() const noexcept { return errors_; }

  private:
    std::vector<std::string> kinds_;  // the kind, then its bases
    std::string message_;
    std::string trace_;
    std::shared_ptr<const detail::ValueRep> value_;
    std::vector<ScriptError> errors_;
};

/// The call was interrupted: Engine::interrupt(), InterruptHandle, Future::cancel, ~Engine.
class WEFT_API Interrupted : public Exception {
  public:
    Interrupted() : Exception("Interrupted: the call was interrupted by the host") {}
};

enum class Limit { Steps, Time, Memory, Tasks, Output };

/// A limit of the call was exceeded (Limits, CallOptions).
class WEFT_API LimitExceeded : public Exception {
  public:
    LimitExceeded(Limit which, std::string what) : Exception(std::move(what)), which_(which) {}
    Limit which() const noexcept { return which_; }

  private:
    Limit which_;
};

/// The Engine behind a Function was destroyed.
class WEFT_API EngineClosed : public Exception {
  public:
    EngineClosed() : Exception("EngineClosed: the engine was destroyed") {}
};

/// A Value does not convert to the requested C++ type (or back). Inside a host function it
/// surfaces in Weft as TypeError.
class WEFT_API ConversionError : public Exception {
  public:
    using Exception::Exception;
};

/// The API was used against its rules (a blocking member on a Weft thread, a second resolve).
class WEFT_API UsageError : public std::logic_error {
  public:
    using std::logic_error::logic_error;
};

/// Thrown by a host function: a Weft error of the given kind ("KeyError", "ValueError", ...;
/// any built-in error kind). Scripts catch it by that name.
class WEFT_API Raise : public std::exception {
  public:
    Raise(std::string kind, std::string message)
        : kind_(std::move(kind)), message_(std::move(message)), what_(kind_ + ": " + message_) {}
    const char* what() const noexcept override { return what_.c_str(); }
    const std::string& kind() const noexcept { return kind_; }
    const std::string& message() const noexcept { return message_; }

  private:
    std::string kind_, message_, what_;
};

// ------------------------------------------------------------------------------------ values

/// The kind of a Value.
enum class Kind : std::uint8_t {
    None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Set, Range, Function, StructType,
    Struct, Error, Promise, HostObject, Channel, Module, Other
};

/// Bytes for Weft's `bytes` (std::vector<std::byte> converts too).
struct Bytes {
    std::string data;
    bool operator==(const Bytes&) const = default;
};

/// A Weft value held by the host: an immutable, reference-counted handle. Any thread.
class WEFT_API Value {
  public:
    Value() noexcept = default;  ///< None
    Value(std::nullptr_t) noexcept {}
    Value(bool b);
    Value(double d);
    Value(float f) : Value(static_cast<double>(f)) {}
    /// Any integer type; a value outside int64 throws ConversionError.
    template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    Value(I i) : Value(from_int(i)) {}
    Value(std::string_view s);
    Value(const char* s) : Value(std::string_view(s)) {}
    Value(const std::string& s) : Value(std::string_view(s)) {}

    /// The Value of a C++ value, through convert<T>::to.
    template <class T>
    static Value from(const T& v) {
        return convert<std::decay_t<const T>>::to(v);  // a char array as const char*
    }

    Kind kind() const noexcept;
    /// Weft's type(): "int", "list", "User", "ValueError".
    std::string type_name() const;
    bool is_none() const noexcept { return kind() == Kind::None; }

    /// Converts through convert<T>::from; ConversionError on a mismatch.
    template <class T>
    T as() const {
        return convert<T>::from(*this);
    }
    /// as<T>(), or nullopt on a mismatch.
    template <class T>
    std::optional<T> try_as() const {
        try {
            return as<T>();
        } catch (const ConversionError&) {
            return std::nullopt;
        }
    }

    // ---- views (no conversion of the whole value)
    /// Items of a list, tuple, set, dict (keys), str (code points) or bytes; ConversionError else.
    std::size_t size() const;
    /// Item i of a list or tuple; ConversionError when out of range or not a sequence.
    Value operator[](std::size_t i) const;
    /// A dict's value for a str key, or a struct's field; ConversionError when absent.
    Value operator[](std::string_view key) const;
    /// A dict's value for `key`, or nullopt.
    std::optional<Value> get(const Value& key) const;
    /// `key in value` (dict keys, list/tuple/set items, substring of a str).
    bool contains(const Value& key) const;
    /// Items of a list, tuple or set (copies of the handles).
    std::vector<Value> elements() const;
    /// Key-value pairs of a dict (or field name-value pairs of a struct), in order.
    std::vector<std::pair<Value, Value>> items() const;
    /// The bytes of a str (UTF-8) or bytes value, valid while this Value lives.
    std::string_view str_view() const;
    std::string_view bytes_view() const;
    /// Weft's str() and repr().
    std::string str() const;
    std::string repr() const;
    /// Weft's == (value semantics).
    bool operator==(const Value& o) const;
    /// Weft's hash(); ConversionError when unhashable.
    std::size_t hash() const;

    // ---- scalars (used by convert<>): ConversionError on a mismatch
    bool to_bool() const;
    std::int64_t to_int() const;
    double to_double() const;  ///< int or float

    /// The internal representation (for the library).
    const std::shared_ptr<const detail::ValueRep>& rep() const noexcept { return rep_; }
    explicit Value(std::shared_ptr<const detail::ValueRep> rep) noexcept : rep_(std::move(rep)) {}

  private:
    static Value from_int(std::int64_t i);
    template <class I>
    static Value from_int(I i) {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (i > static_cast<I>(std::numeric_limits<std::int64_t>::max()))
                throw ConversionError("integer " + std::to_string(i) + " does not fit Weft's int (int64)");
        }
        return from_int(static_cast<std::int64_t>(i));
    }
    std::shared_ptr<const detail::ValueRep> rep_;
};

/// A list, tuple, dict or set built from Values.
WEFT_API Value list(std::vector<Value> items);
WEFT_API Value tuple(std::vector<Value> items);
WEFT_API Value dict(std::vector<std::pair<Value, Value>> items);
WEFT_API Value set(std::vector<Value> items);
WEFT_API Value bytes(std::string_view data);
/// A keyword argument for call(): e.call("f", 1, weft::kw("sep", ", ")).
struct KwArg {
    std::string name;
    Value value;
};
inline KwArg kw(std::string name, Value v) {
    return KwArg{std::move(name), std::move(v)};
}

/// A callable Value; calls go to its own Engine (EngineClosed once it is gone).
class WEFT_API Function : public Value {
  public:
    Function() = default;
    explicit Function(Value v);
    template <class R = Value, class... A>
    R operator()(A&&... args) const;
};

// ------------------------------------------------------------------------------------ convert

/// Conversion trait: specialize it for your own types. `static Value to(const T&)` and
/// `static T from(const Value&)` (throw ConversionError on a mismatch).
template <class T, class Enable>
struct convert {
    static_assert(sizeof(T) == 0, "no weft::convert<T> for this type: specialize weft::convert");
};

namespace detail {
[[noreturn]] WEFT_API void conversion_failed(const Value& v, const char* expected);
template <class T>
struct is_shared_ptr : std::false_type {};
template <class T>
struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};
// Host objects (Engine::def_type<T>): a Value holding a shared_ptr<T>.
WEFT_API Value make_host_object(std::shared_ptr<void> p, const std::type_info& type);
WEFT_API std::shared_ptr<void> host_object_ptr(const Value& v, const std::type_info& type);
}  // namespace detail

template <>
struct convert<Value> {
    static Value to(const Value& v) { return v; }
    static Value from(const Value& v) { return v; }
};
template <>
struct convert<Function> {
    static Value to(const Function& f) { return f; }
    static Function from(const Value& v) { return Function(v); }
};
template <>
struct convert<bool> {
    static Value to(bool b) { return Value(b); }
    static bool from(const Value& v) { return v.to_bool(); }
};
template <class I>
struct convert<I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>> {
    static Value to(I i) { return Value(i); }
    static I from(const Value& v) {
        std::int64_t i = v.to_int();
        if constexpr (!std::is_same_v<I, std::int64_t>) {
            bool fits = std::is_signed_v<I> ? (i >= static_cast<std::int64_t>(std::numeric_limits<I>::min()) &&
                                               i <= static_cast<std::int64_t>(std::numeric_limits<I>::max()))
                                            : (i >= 0 && static_cast<std::uint64_t>(i) <=
                                                             static_cast<std::uint64_t>(std::numeric_limits<I>::max()));
            if (!fits) throw ConversionError("int " + std::to_string(i) + " is out of range for the C++ type");
        }
        return static_cast<I>(i);
    }
};
template <class F>
struct convert<F, std::enable_if_t<std::is_floating_point_v<F>>> {
    static Value to(F f) { return Value(static_cast<double>(f)); }
    static F from(const Value& v) { return static_cast<F>(v.to_double()); }
};
template <>
struct convert<std::string> {
    static Value to(const std::string& s) { return Value(s); }
    static std::string from(const Value& v) { return std::string(v.str_view()); }
};
template <>
struct convert<std::string_view> {  // as() only: a view into the str, valid while the Value lives
    static Value to(std::string_view s) { return Value(s); }
    static std::string_view from(const Value& v) { return v.str_view(); }
};
template <>
struct convert<const char*> {
    static Value to(const char* s) { return Value(s); }
};
template <>
struct convert<Bytes> {
    static Value to(const Bytes& b) { return bytes(b.data); }
    static Bytes from(const Value& v) { return Bytes{std::string(v.bytes_view())}; }
};
template <>
struct convert<std::vector<std::byte>> {
    static Value to(const std::vector<std::byte>& b) {
        return bytes(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    }
    static std::vector<std::byte> from(const Value& v) {
        auto s = v.bytes_view();
        auto* p = reinterpret_cast<const std::byte*>(s.data());
        return std::vector<std::byte>(p, p + s.size());
    }
};
template <>
struct convert<std::nullptr_t> {
    static Value to(std::nullptr_t) { return Value(); }
    static std::nullptr_t from(const Value& v) {
        if (!v.is_none()) detail::conversion_failed(v, "None");
        return nullptr;
    }
};
template <>
struct convert<std::monostate> {
    static Value to(std::monostate) { return Value(); }
    static std::monostate from(const Value& v) {
        if (!v.is_none()) detail::conversion_failed(v, "None");
        return {};
    }
};
template <class T>
struct convert<std::optional<T>> {
    static Value to(const std::optional<T>& o) { return o ? Value::from(*o) : Value(); }
    static std::optional<T> from(const Value& v) {
        if (v.is_none()) return std::nullopt;
        return v.as<T>();
    }
};
namespace detail {
template <class C>
Value seq_to(const C& c) {
    std::vector<Value> items;
    for (const auto& x : c) items.push_back(Value::from(x));
    return list(std::move(items));
}
template <class C>
C seq_from(const Value& v) {
    Kind k = v.kind();
    if (k != Kind::List && k != Kind::Tuple && k != Kind::Set) conversion_failed(v, "list");
    C out;
    for (auto& x : v.elements()) out.insert(out.end(), x.template as<typename C::value_type>());
    return out;
}
template <class M>
Value map_to(const M& m) {
    std::vector<std::pair<Value, Value>> items;
    for (const auto& [k, x] : m) items.emplace_back(Value::from(k), Value::from(x));
    return dict(std::move(items));
}
template <class M>
M map_from(const Value& v) {
    if (v.kind() != Kind::Dict) conversion_failed(v, "dict");
    M out;
    for (auto& [k, x] : v.items())
        out.emplace(k.template as<typename M::key_type>(), x.template as<typename M::mapped_type>());
    return out;
}
template <class S>
Value set_to(const S& s) {
    std::vector<Value> items;
    for (const auto& x : s) items.push_back(Value::from(x));
    return set(std::move(items));
}
}  // namespace detail
template <class T, class A>
struct convert<std::vector<T, A>, std::enable_if_t<!std::is_same_v<T, std::byte>>> {
    static Value to(const std::vector<T, A>& v) { return detail::seq_to(v); }
    static std::vector<T, A> from(const Value& v) { return detail::seq_from<std::vector<T, A>>(v); }
};
template <class T>
struct convert<std::deque<T>> {
    static Value to(const std::deque<T>& v) { return detail::seq_to(v); }
    static std::deque<T> from(const Value& v) { return detail::seq_from<std::deque<T>>(v); }
};
template <class T>
struct convert<std::list<T>> {
    static Value to(const std::list<T>& v) { return detail::seq_to(v); }
    static std::list<T> from(const Value& v) { return detail::seq_from<std::list<T>>(v); }
};
template <class T, std::size_t N>
struct convert<std::array<T, N>> {
    static Value to(const std::array<T, N>& v) { return detail::seq_to(v); }
    static std::array<T, N> from(const Value& v) {
        Kind k = v.kind();
        if ((k != Kind::List && k != Kind::Tuple) || v.size() != N)
            detail::conversion_failed(v, ("a list of " + std::to_string(N) + " items").c_str());
        std::array<T, N> out;
        for (std::size_t i = 0; i < N; ++i) out[i] = v[i].as<T>();
        return out;
    }
};
template <class K, class V, class C, class A>
struct convert<std::map<K, V, C, A>> {
    static Value to(const std::map<K, V, C, A>& m) { return detail::map_to(m); }
    static std::map<K, V, C, A> from(const Value& v) { return detail::map_from<std::map<K, V, C, A>>(v); }
};
template <class K, class V, class H, class E, class A>
struct convert<std::unordered_map<K, V, H, E, A>> {
    using M = std::unordered_map<K, V, H, E, A>;
    static Value to(const M& m) { return detail::map_to(m); }
    static M from(const Value& v) { return detail::map_from<M>(v); }
};
template <class T, class C, class A>
struct convert<std::set<T, C, A>> {
    static Value to(const std::set<T, C, A>& s) { return detail::set_to(s); }
    static std::set<T, C, A> from(const Value& v) { return detail::seq_from<std::set<T, C, A>>(v); }
};
template <class T, class H, class E, class A>
struct convert<std::unordered_set<T, H, E, A>> {
    using S = std::unordered_set<T, H, E, A>;
    static Value to(const S& s) { return detail::set_to(s); }
    static S from(const Value& v) { return detail::seq_from<S>(v); }
};
template <class... T>
struct convert<std::tuple<T...>> {
    static Value to(const std::tuple<T...>& t) {
        return std::apply([](const auto&... x) { return tuple({Value::from(x)...}); }, t);
    }
    static std::tuple<T...> from(const Value& v) {
        Kind k = v.kind();
        if ((k != Kind::List && k != Kind::Tuple) || v.size() != sizeof...(T))
            detail::conversion_failed(v, ("a tuple of " + std::to_string(sizeof...(T)) + " items").c_str());
        return from_items(v, std::index_sequence_for<T...>{});
    }

  private:
    template <std::size_t... I>
    static std::tuple<T...> from_items(const Value& v, std::index_sequence<I...>) {
        return std::tuple<T...>(v[I].template as<T>()...);
    }
};
template <class A, class B>
struct convert<std::pair<A, B>> {
    static Value to(const std::pair<A, B>& p) { return tuple({Value::from(p.first), Value::from(p.second)}); }
    static std::pair<A, B> from(const Value& v) {
        auto t = convert<std::tuple<A, B>>::from(v);
        return {std::move(std::get<0>(t)), std::move(std::get<1>(t))};
    }
};
template <class... T>
struct convert<std::variant<T...>> {  // from(): the first alternative that converts
    static Value to(const std::variant<T...>& v) {
        return std::visit([](const auto& x) { return Value::from(x); }, v);
    }
    static std::variant<T...> from(const Value& v) {
        std::optional<std::variant<T...>> out;
        (try_one<T>(v, out) || ...);
        if (!out) detail::conversion_failed(v, "any alternative of the variant");
        return std::move(*out);
    }

  private:
    template <class U>
    static bool try_one(const Value& v, std::optional<std::variant<T...>>& out) {
        if (auto x = v.try_as<U>()) {
            out.emplace(std::in_place_type<U>, std::move(*x));
            return true;
        }
        return false;
    }
};
template <class Rep, class Period>
struct convert<std::chrono::duration<Rep, Period>> {  // float seconds, as Weft durations
    using D = std::chrono::duration<Rep, Period>;
    static Value to(const D& d) { return Value(std::chrono::duration<double>(d).count()); }
    static D from(const Value& v) {
        return std::chrono::duration_cast<D>(std::chrono::duration<double>(v.to_double()));
    }
};
template <class T>
struct convert<std::shared_ptr<T>> {  // host objects of a def_type<T>: the same object, no copy
    static Value to(const std::shared_ptr<T>& p) {
        return detail::make_host_object(std::const_pointer_cast<std::remove_const_t<T>>(p),
                                        typeid(std::remove_const_t<T>));
    }
    static std::shared_ptr<T> from(const Value& v) {
        return std::static_pointer_cast<T>(detail::host_object_ptr(v, typeid(std::remove_const_t<T>)));
    }
};
template <class R, class... A>
struct convert<std::function<R(A...)>> {  // any callable Value; calls go back through its Engine
    static std::function<R(A...)> from(const Value& v) {
        Function f(v);
        return [f](A... args) -> R { return f.template operator()<R>(std::forward<A>(args)...); };
    }
};

// ------------------------------------------------------------------------------------ records

// WEFT_RECORD(Point, x, y) (at global scope, after `struct Point { double x, y; };`): converts a
// plain C++ struct field by field (up to 16 fields, each with its own convert<>). To Weft: a
// dict {'x': ..., 'y': ...} in field order — or, in an Engine where engine.def_struct<Point>("Point")
// ran, an instance of that Weft struct (also inside lists, tuples, dicts and other records). From
// Weft: any dict with those str keys or any struct with those fields (a Weft `struct Point: x, y`
// instance converts directly); a missing or mistyped field is a ConversionError naming the field.
namespace detail {
/// Marks `dict` (a record's fields) as a value of C++ type `t`, for Engine::def_struct.
WEFT_API Value tag_record(Value dict, const std::type_info& t);
// "x, y ,z" -> {"x", "y", "z"}: the field names, from the macro's stringized arguments.
inline std::vector<std::string> record_names(const char* list) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* p = list;; ++p) {
        if (*p == ',' || *p == 0) {
            std::size_t b = cur.find_first_not_of(" \t\n"), e = cur.find_last_not_of(" \t\n");
            out.push_back(b == std::string::npos ? std::string() : cur.substr(b, e - b + 1));
            cur.clear();
            if (*p == 0) break;
        } else {
            cur += *p;
        }
    }
    return out;
}
template <class T, class Members>
struct record_convert {
    static const std::vector<std::string>& names(const char* list) {
        static const std::vector<std::string> n = record_names(list);
        return n;
    }
    template <class Tuple>
    static Value to_impl(const T& t, const Tuple& members, const char* list) {
        const auto& n = names(list);
        std::vector<std::pair<Value, Value>> items;
        std::size_t i = 0;
        std::apply([&](auto... m) { (items.emplace_back(Value(n[i++]), Value::from(t.*m)), ...); }, members);
        return tag_record(dict(std::move(items)), typeid(T));
    }
    template <class Tuple>
    static T from_impl(const Value& v, const Tuple& members, const char* list, const char* type) {
        const auto& n = names(list);
        T t{};
        std::size_t i = 0;
        std::apply(
            [&](auto... m) {
                (
                    [&](auto mp) {
                        const std::string& field = n[i++];
                        using F = std::remove_cv_t<std::remove_reference_t<decltype(t.*mp)>>;
                        try {
                            t.*mp = v[field].template as<F>();
                        } catch (const ConversionError& e) {
                            throw ConversionError(std::string(type) + "." + field + ": " + e.what());
                        }
                    }(m),
                    ...);
            },
            members);
        return t;
    }
};
}  // namespace detail

#define WEFT_DETAIL_MP(T, f) &T::f
#define WEFT_DETAIL_FE1(T, a) WEFT_DETAIL_MP(T, a)
#define WEFT_DETAIL_FE2(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE1(T, __VA_ARGS__)
#define WEFT_DETAIL_FE3(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE2(T, __VA_ARGS__)
#define WEFT_DETAIL_FE4(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE3(T, __VA_ARGS__)
#define WEFT_DETAIL_FE5(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE4(T, __VA_ARGS__)
#define WEFT_DETAIL_FE6(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE5(T, __VA_ARGS__)
#define WEFT_DETAIL_FE7(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE6(T, __VA_ARGS__)
#define WEFT_DETAIL_FE8(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE7(T, __VA_ARGS__)
#define WEFT_DETAIL_FE9(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE8(T, __VA_ARGS__)
#define WEFT_DETAIL_FE10(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE9(T, __VA_ARGS__)
#define WEFT_DETAIL_FE11(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE10(T, __VA_ARGS__)
#define WEFT_DETAIL_FE12(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE11(T, __VA_ARGS__)
#define WEFT_DETAIL_FE13(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE12(T, __VA_ARGS__)
#define WEFT_DETAIL_FE14(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE13(T, __VA_ARGS__)
#define WEFT_DETAIL_FE15(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE14(T, __VA_ARGS__)
#define WEFT_DETAIL_FE16(T, a, ...) WEFT_DETAIL_MP(T, a), WEFT_DETAIL_FE15(T, __VA_ARGS__)
#define WEFT_DETAIL_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, NAME, ...) NAME
#define WEFT_DETAIL_MEMBERS(T, ...)                                                                          \
    WEFT_DETAIL_PICK(__VA_ARGS__, WEFT_DETAIL_FE16, WEFT_DETAIL_FE15, WEFT_DETAIL_FE14, WEFT_DETAIL_FE13,    \
                     WEFT_DETAIL_FE12, WEFT_DETAIL_FE11, WEFT_DETAIL_FE10, WEFT_DETAIL_FE9, WEFT_DETAIL_FE8, \
                     WEFT_DETAIL_FE7, WEFT_DETAIL_FE6, WEFT_DETAIL_FE5, WEFT_DETAIL_FE4, WEFT_DETAIL_FE3,    \
                     WEFT_DETAIL_FE2, WEFT_DETAIL_FE1)(T, __VA_ARGS__)
#define WEFT_RECORD(T, ...)                                                                                \
    template <>                                                                                           \
    struct weft::convert<T> {                                                                             \
        static auto members() { return std::make_tuple(WEFT_DETAIL_MEMBERS(T, __VA_ARGS__)); }           \
        using Impl = ::weft::detail::record_convert<T, void>;                                             \
        static ::weft::Value to(const T& t) { return Impl::to_impl(t, members(), #__VA_ARGS__); }        \
        static T from(const ::weft::Value& v) { return Impl::from_impl(v, members(), #__VA_ARGS__, #T); } \
        static const std::vector<std::string>& field_names() { return Impl::names(#__VA_ARGS__); }        \
    }

// ------------------------------------------------------------------------------------ options

/// Worker threads, timer thread, blocking pool and I/O reactor, shareable by many Engines.
struct RuntimeOptions {
    unsigned workers = 0;                 ///< 0 = std::thread::hardware_concurrency()
    std::size_t stack_size = 256 * 1024;  ///< reserved bytes per fiber stack (committed lazily)
    unsigned blocking_threads = 64;       ///< cap of the blocking pool (def_blocking, SQLite, ...)
    double time_slice = 0.010;            ///< seconds before a busy task yields
    /// The fiber-stack overflow SIGSEGV handler (chained to the host's). Off: an overflow is
    /// then a plain SIGSEGV.
    bool install_signal_handlers = false;
};

class WEFT_API Runtime {
  public:
    static std::shared_ptr<Runtime> create(RuntimeOptions options = {});
    unsigned workers() const noexcept;
    ~Runtime();  ///< joins its threads; every Engine using it must be gone
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;
    detail::RuntimeImpl& impl() noexcept { return *impl_; }

  private:
    explicit Runtime(RuntimeOptions options);
    std::unique_ptr<detail::RuntimeImpl> impl_;
};

/// Limits of every call of an Engine (EngineOptions::limits), narrowed per call by CallOptions.
/// 0 = none.
struct Limits {
    /// Steps of one call, summed over its tasks: a step is a safepoint (loop back-edge, call,
    /// return), counted in batches of 64 per task → LimitExceeded(Steps).
    std::uint64_t max_steps = 0;
    std::chrono::milliseconds timeout{0};  ///< wall time of one call → LimitExceeded(Time)
    /// Heap bytes the Engine's scripts may hold while the call runs (counted while calls with a
    /// memory limit run; EngineStats::memory_bytes) → LimitExceeded(Memory), checked every 64
    /// steps; a single allocation a script sizes ("x" * n) is refused at once with MemoryError.
    std::size_t max_memory = 0;
    std::size_t max_tasks = 0;             ///< live tasks of the Engine (catchable Error at spawn)
    std::size_t max_depth = 0;             ///< call depth before RecursionError (0: the default)
    std::size_t max_output = 0;            ///< bytes print() may write in one call → LimitExceeded(Output)
};

/// What scripts may do (spec section 11, the Deno model): none by default.
class WEFT_API Capabilities {
  public:
    static Capabilities none() { return {}; }
    static Capabilities all();
    /// From command-line flags: "--allow-read=/srv,/tmp", "-A", "--allow-net". UsageError on a bad flag.
    static Capabilities from_flags(std::span<const std::string> flags);
    Capabilities& allow_read(std::string path);
    Capabilities& allow_write(std::string path);
    Capabilities& allow_net(std::string host_or_host_port = "");  ///< "" = all hosts
    Capabilities& allow_run(std::string program = "");
    Capabilities& allow_env(std::string name = "");
    /// The flags, for logs: {"--allow-read=/srv"}.
    const std::vector<std::string>& to_flags() const noexcept { return flags_; }

  private:
    std::vector<std::string> flags_;
};

/// One task event of an Engine's runtime (EngineOptions::trace): what `weft run --trace-out`
/// records. `what` says why a task blocked ("channel recv", "sleep", "yield"), else empty.
struct TraceEvent {
    enum class Kind : std::uint8_t { Created, Started, Blocked, Resumed, Done };
    Kind kind;
    std::uint64_t task_id;
    int worker;            ///< worker index, -1 off the workers
    std::int64_t time_ns;  ///< steady clock
    std::string_view what;
};

/// What EngineOptions::on_slice is told about a task that used up a time slice.
struct SliceInfo {
    std::string_view engine;   ///< EngineOptions::name
    std::string_view task;     ///< the task's name and id ("engine:spin#2" for call("spin"), "worker#7")
    std::uint64_t steps;       ///< steps of the whole call so far (safepoints, in batches of 64)
    std::int64_t elapsed_ns;   ///< wall time since the call began, nanoseconds
};

struct EngineOptions {
    std::shared_ptr<Runtime> runtime;  ///< null: the Engine creates its own with `workers` threads
    unsigned workers = 0;              ///< only when runtime is null; 0 = one per core
    Capabilities capabilities = Capabilities::none();
    Limits limits;
    std::vector<std::string> args;  ///< the script's `args` (sys.argv[1:])
    bool sequential = false;        ///< the CLI's --sequential
    double default_timeout = 0;     ///< the CLI's --default-timeout (seconds)
    /// Where print() goes; null: the process's stdout. Called with whole chunks, at the latest
    /// when each call ends; from any thread, one call at a time.
    std::function<void(std::string_view)> stdout_sink;
    /// Where the scripts' standard error goes (print(..., file=sys.stderr), sys.stderr.write, the
    /// diagnostic of an imported module that does not compile); null: the process's stderr.
    /// From any thread, one call at a time.
    std::function<void(std::string_view)> stderr_sink;
    std::string name = "engine";  ///< the root task names of its calls ("engine:call")
    /// Every task event of the Engine's runtime, on the thread where it happens (workers; keep it
    /// cheap and thread-safe; it must not call into the Engine). Only for an Engine with its own
    /// runtime (UsageError with EngineOptions::runtime: a shared runtime's events are everyone's).
    /// Tracing makes the VM start every deferred call as a task, so calls run slower.
    std::function<void(const TraceEvent&)> trace;
    /// The source of a module the scripts import, for hosts that keep scripts in memory (Wren's
    /// loadModuleFn): called with the import as written ("config", "lib/util.weft") and the
    /// importing module's path or name. A path import asks it first, a name import after the
    /// standard and host modules. Return nullopt to let the usual search go on. Each module is
    /// loaded once per Engine. Called on a worker: thread-safe, no long blocking, no calls
    /// into the Engine. A C++ exception fails the import (Error in the script).
    std::function<std::optional<std::string>(std::string_view name, std::string_view importer)> load_module;
    /// Folders searched for `import name` (name.weft) when no standard, host or load_module
    /// module has that name. The host grants them: no read capability is needed.
    std::vector<std::string> module_paths;
    /// Called on a worker each time a task of one of this Engine's calls has run for a time
    /// slice (~10 ms of running; time parked is not counted), for a host's scheduler, watchdog
    /// or progress display (V8's interrupt callback, Lua's count hook). Return false to
    /// interrupt the call (Interrupted, as interrupt() does, for that call only). Keep it cheap:
    /// it must not block or call into the Engine; an exception it throws counts as false.
    /// Set, it makes every call count its steps (a few percent). Not for run_program.
    std::function<bool(const SliceInfo&)> on_slice;
    /// ~Engine interrupts the running calls and gives them this long to end (their `finally`
    /// blocks run). A call still running then — a host function that does not return, a
    /// shielded cleanup — is reported once on the stderr sink and still waited for: its code may
    /// use what the host destroys after ~Engine, so it is never abandoned.
    std::chrono::milliseconds shutdown_grace{2000};
};

struct CallOptions {
    std::optional<Limits> limits;              ///< narrower than the Engine's (each field min'd)
    std::optional<Capabilities> capabilities;  ///< must be covered by the Engine's, else UsageError
    std::string task_name;                     ///< root task name in traces
};

struct DefOptions {
    bool serialized = false;  ///< at most one call at a time; other callers park (never block a worker)
    std::string doc;
};

// ------------------------------------------------------------------------------------ results

/// A call's outcome without exceptions for script errors (sol2's protected_function_result).
template <class T>
class Result {
  public:
    explicit Result(T v) : value_(std::move(v)) {}
    explicit Result(ScriptError e) : error_(std::move(e)) {}
    bool ok() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    T& value() {
        if (!value_) throw *error_;
        return *value_;
    }
    const ScriptError& error() const {
        if (!error_) throw UsageError("Result::error() of a successful call");
        return *error_;
    }

  private:
    std::optional<T> value_;
    std::optional<ScriptError> error_;
};
template <>
class Result<void> {
  public:
    Result() = default;
    explicit Result(ScriptError e) : error_(std::move(e)) {}
    bool ok() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    void value() {
        if (error_) throw *error_;
    }
    const ScriptError& error() const {
        if (!error_) throw UsageError("Result::error() of a successful call");
        return *error_;
    }

  private:
    std::optional<ScriptError> error_;
};

namespace detail {
template <class R>
R value_as(const Value& v) {
    if constexpr (std::is_void_v<R>)
        return;
    else
        return v.as<R>();
}
// The state of a call_async (lib).
WEFT_API bool future_ready(const FutureCore& f);
WEFT_API bool future_wait_for(const FutureCore& f, std::chrono::nanoseconds d);
WEFT_API Value future_get(FutureCore& f);  // blocks; throws like call()
WEFT_API void future_cancel(FutureCore& f);
WEFT_API void future_then(FutureCore& f, std::function<void(const Value*, std::exception_ptr)> cb);
}  // namespace detail

/// The result of call_async: std::future-like, plus cancel and then. Any thread; get() once.
template <class T>
class Future {
  public:
    Future() = default;
    explicit Future(std::shared_ptr<detail::FutureCore> c) : core_(std::move(c)) {}
    bool valid() const noexcept { return static_cast<bool>(core_); }
    bool ready() const { return detail::future_ready(*core_); }
    /// True when it settled within `d`.
    bool wait_for(std::chrono::nanoseconds d) const { return detail::future_wait_for(*core_, d); }
    /// Blocks; rethrows ScriptError / LimitExceeded / Interrupted / ConversionError.
    T get() {
        auto c = std::move(core_);
        if (!c) throw UsageError("Future::get() called twice");
        return detail::value_as<T>(detail::future_get(*c));
    }
    /// Cancels the call's task tree; get() then throws Interrupted.
    void cancel() { detail::future_cancel(*core_); }
    /// Runs `f` once the call has settled, on a runtime thread (at once, here, if it has). It
    /// must not block nor call blocking Engine members.
    void then(std::function<void(Result<T>&)> f) {
        detail::future_then(*core_, [f = std::move(f)](const Value* v, std::exception_ptr e) {
            if (v) {
                if constexpr (std::is_void_v<T>) {
                    Result<void> r;
                    f(r);
                } else {
                    Result<T> r(v->as<T>());
                    f(r);
                }
                return;
            }
            try {
                std::rethrow_exception(e);
            } catch (const ScriptError& se) {
                Result<T> r(se);
                f(r);
            }
        });
    }

  private:
    std::shared_ptr<detail::FutureCore> core_;
};

// ------------------------------------------------------------------------------------ host side

/// The arguments of a raw host function (sol2's variadic_args).
class WEFT_API Args {
  public:
    Args(std::vector<Value> pos, std::vector<KwArg> kw) : pos_(std::move(pos)), kw_(std::move(kw)) {}
    std::size_t size() const noexcept { return pos_.size(); }
    const Value& operator[](std::size_t i) const { return pos_.at(i); }
    /// Argument i converted; TypeError in Weft naming the position on a mismatch.
    template <class T>
    T get(std::size_t i) const;
    const Value* find_kw(std::string_view name) const {
        for (auto& k : kw_)
            if (k.name == name) return &k.value;
        return nullptr;
    }
    template <class T>
    T kw(std::string_view name, T fallback) const {
        const Value* v = find_kw(name);
        return v ? v->as<T>() : std::move(fallback);
    }
    const std::vector<KwArg>& keywords() const noexcept { return kw_; }
    std::vector<Value>& positional() noexcept { return pos_; }

  private:
    std::vector<Value> pos_;
    std::vector<KwArg> kw_;
};

/// The optional first parameter of sync and async host functions: the calling task.
class WEFT_API Context {
  public:
    Engine& engine() const noexcept { return *engine_; }
    /// The calling task was cancelled (timeout, race lost, interrupt).
    bool cancelled() const;
    /// Raises the task's cancellation now if due (Cancelled, a limit, an interrupt): call it
    /// in long loops of a sync host function.
    void checkpoint();
    /// Calls a Weft callable on this task (re-entering Weft from a host function).
    template <class R = Value, class... A>
    R call(const Value& callable, A&&... args) {
        return detail::value_as<R>(call_values(callable, {Value::from(std::forward<A>(args))...}));
    }
    Value call_values(const Value& callable, std::vector<Value> args);
    /// "fetch#12".
    std::string task_id() const;
    /// To the Engine's stdout sink (as print()).
    void print(std::string_view text);
    /// The task's capability to read `path` (as the standard library checks it): raises
    /// PermissionDenied in the script when it lacks it.
    void require_read(std::string_view path) const;
    /// The same for writing `path`, connecting to `host` (`port` -1: any port), running
    /// `program` and reading the environment variable `name` (--allow-write, --allow-net,
    /// --allow-run, --allow-env). PermissionDenied in the script when the task lacks it —
    /// including inside a `restrict` block that narrowed the Engine's capabilities.
    void require_write(std::string_view path) const;
    void require_net(std::string_view host, int port = -1) const;
    void require_run(std::string_view program) const;
    void require_env(std::string_view name) const;

    Context(Engine* e, void* interp) noexcept : engine_(e), interp_(interp) {}

  private:
    Engine* engine_;
    void* interp_;
};

namespace detail {
WEFT_API void completion_value(CompletionCore* c, Value v);
WEFT_API void completion_error(CompletionCore* c, std::exception_ptr e);
WEFT_API bool completion_cancelled(const CompletionCore* c) noexcept;
WEFT_API void completion_on_cancel(CompletionCore* c, std::function<void()> f);
WEFT_API void completion_drop(CompletionCore* c) noexcept;
}  // namespace detail

/// Resolves an async host call (def_async), once, from any thread. Move-only.
template <class T>
class Completion {
  public:
    explicit Completion(std::shared_ptr<detail::CompletionCore> c) : core_(std::move(c)) {}
    Completion(Completion&&) noexcept = default;
    Completion& operator=(Completion&&) noexcept = default;
    Completion(const Completion&) = delete;
    /// Never resolved: rejects with Error("<name>(): the host dropped its completion").
    ~Completion() { detail::completion_drop(core_.get()); }

    /// Delivers the value (Completion<void>: resolve()). A second resolve/reject: UsageError;
    /// after the task was cancelled: ignored.
    template <class U = T, std::enable_if_t<!std::is_void_v<U>, int> = 0>
    void resolve(const U& value) {
        detail::completion_value(core_.get(), Value::from(value));
    }
    template <class U = T, std::enable_if_t<std::is_void_v<U>, int> = 0>
    void resolve() {
        detail::completion_value(core_.get(), Value());
    }
    void reject(const Raise& error) { detail::completion_error(core_.get(), std::make_exception_ptr(error)); }
    /// Mapped to a Weft error by the table of docs/embedding.md (std::out_of_range: IndexError...).
    void reject(std::exception_ptr error) { detail::completion_error(core_.get(), std::move(error)); }
    /// The waiting task was cancelled: a result is no longer needed (resolving is ignored).
    bool cancelled() const noexcept { return detail::completion_cancelled(core_.get()); }
    /// Runs `f` once, on a runtime thread, if the task is cancelled before a resolve (at once,
    /// here, if it already was).
    void on_cancel(std::function<void()> f) { detail::completion_on_cancel(core_.get(), std::move(f)); }

  private:
    std::shared_ptr<detail::CompletionCore> core_;
};

namespace detail {
// Type-erased host functions.
using SyncFn = std::function<Value(Context&, Args&)>;
using BlockingFn = std::function<std::function<Value()>(Args&)>;  // converts, then runs on the pool
using AsyncFn = std::function<void(Context&, Args&, std::shared_ptr<CompletionCore>)>;

template <class F>
struct fn_traits : fn_traits<decltype(&std::decay_t<F>::operator())> {};
template <class R, class... A>
struct fn_traits<R (*)(A...)> {
    using ret = R;
    using args = std::tuple<A...>;
};
template <class R, class... A>
struct fn_traits<R(A...)> : fn_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct fn_traits<R (C::*)(A...) const> : fn_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct fn_traits<R (C::*)(A...)> : fn_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct fn_traits<R (C::*)(A...) const noexcept> : fn_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct fn_traits<R (C::*)(A...) noexcept> : fn_traits<R (*)(A...)> {};
template <class R, class... A>
struct fn_traits<R (*)(A...) noexcept> : fn_traits<R (*)(A...)> {};

template <class T>
struct is_completion : std::false_type {};
template <class T>
struct is_completion<Completion<T>> : std::true_type {
    using type = T;
};

// Argument i converted, or a ConversionError naming the position (TypeError in Weft).
[[noreturn]] WEFT_API void bad_argument(std::size_t i, const ConversionError& e);
[[noreturn]] WEFT_API void bad_arity(std::size_t expected, std::size_t got);
template <class T>
std::decay_t<T> arg_as(Args& a, std::size_t i) {
    try {
        return a[i].template as<std::decay_t<T>>();
    } catch (const ConversionError& e) {
        bad_argument(i, e);
    }
}

// Whether a host function's first parameter is Context&.
template <class Tuple>
constexpr bool takes_context() {
    if constexpr (std::tuple_size_v<Tuple> > 0)
        return std::is_same_v<std::decay_t<std::tuple_element_t<0, Tuple>>, Context>;
    else
        return false;
}

template <class R, class F, class Tuple, std::size_t... I>
Value invoke_converted(F& f, Context* cx, Args& a, std::index_sequence<I...>) {
    constexpr bool with_cx = takes_context<Tuple>();
    constexpr std::size_t off = with_cx ? 1 : 0;
    if (a.size() != sizeof...(I)) bad_arity(sizeof...(I), a.size());
    if constexpr (with_cx) {
        if constexpr (std::is_void_v<R>) {
            f(*cx, arg_as<std::tuple_element_t<I + off, Tuple>>(a, I)...);
            return Value();
        } else {
            return Value::from(f(*cx, arg_as<std::tuple_element_t<I + off, Tuple>>(a, I)...));
        }
    } else {
        if constexpr (std::is_void_v<R>) {
            f(arg_as<std::tuple_element_t<I, Tuple>>(a, I)...);
            return Value();
        } else {
            return Value::from(f(arg_as<std::tuple_element_t<I, Tuple>>(a, I)...));
        }
    }
}

template <class Tuple>
constexpr std::size_t user_arity() {
    return std::tuple_size_v<Tuple> - (takes_context<Tuple>() ? 1 : 0);
}

// sync: f(args...) or f(Context&, args...) or raw f(Context&, Args&)
template <class F>
SyncFn make_sync(F f) {
    using T = fn_traits<F>;
    using Tuple = typename T::args;
    using R = typename T::ret;
    if constexpr (std::is_invocable_v<F&, Context&, Args&>) {
        return [f = std::move(f)](Context& cx, Args& a) mutable -> Value {
            if constexpr (std::is_void_v<R>) {
                f(cx, a);
                return Value();
            } else {
                return Value::from(f(cx, a));
            }
        };
    } else {
        return [f = std::move(f)](Context& cx, Args& a) mutable -> Value {
            return invoke_converted<R, F, Tuple>(f, &cx, a, std::make_index_sequence<user_arity<Tuple>()>{});
        };
    }
}

template <class F, class Tuple, std::size_t... I>
BlockingFn make_blocking_impl(F f, std::index_sequence<I...>) {
    using R = typename fn_traits<F>::ret;
    return [f = std::make_shared<F>(std::move(f))](Args& a) -> std::function<Value()> {
        if (a.size() != sizeof...(I)) bad_arity(sizeof...(I), a.size());
        auto converted = std::make_shared<std::tuple<std::decay_t<std::tuple_element_t<I, Tuple>>...>>(
            arg_as<std::tuple_element_t<I, Tuple>>(a, I)...);
        return [f, converted]() -> Value {
            if constexpr (std::is_void_v<R>) {
                std::apply(*f, std::move(*converted));
                return Value();
            } else {
                return Value::from(std::apply(*f, std::move(*converted)));
            }
        };
    };
}
// blocking: f(args...) run on the blocking pool (no Context: not on a Weft thread)
template <class F>
BlockingFn make_blocking(F f) {
    using Tuple = typename fn_traits<F>::args;
    return make_blocking_impl<F, Tuple>(std::move(f), std::make_index_sequence<std::tuple_size_v<Tuple>>{});
}

template <class F, class Tuple, std::size_t... I>
AsyncFn make_async_impl(F f, std::index_sequence<I...>) {
    constexpr std::size_t n = std::tuple_size_v<Tuple>;
    using Last = std::decay_t<std::tuple_element_t<n - 1, Tuple>>;
    static_assert(is_completion<Last>::value, "def_async: the last parameter must be weft::Completion<T>");
    constexpr bool with_cx = takes_context<Tuple>();
    constexpr std::size_t off = with_cx ? 1 : 0;
    return [f = std::move(f)](Context& cx, Args& a, std::shared_ptr<CompletionCore> core) mutable {
        if (a.size() != sizeof...(I)) bad_arity(sizeof...(I), a.size());
        Last done(std::move(core));
        if constexpr (with_cx)
            f(cx, arg_as<std::tuple_element_t<I + off, Tuple>>(a, I)..., std::move(done));
        else
            f(arg_as<std::tuple_element_t<I, Tuple>>(a, I)..., std::move(done));
    };
}
// async: f(args..., Completion<T>) or f(Context&, args..., Completion<T>)
template <class F>
AsyncFn make_async(F f) {
    using Tuple = typename fn_traits<F>::args;
    constexpr std::size_t n = std::tuple_size_v<Tuple>;
    static_assert(n >= 1, "def_async: the last parameter must be weft::Completion<T>");
    constexpr bool with_cx = takes_context<Tuple>();
    return make_async_impl<F, Tuple>(std::move(f), std::make_index_sequence<n - 1 - (with_cx ? 1 : 0)>{});
}

// Host types.
struct TypeDesc;
WEFT_API TypeDesc* type_desc(Engine& e, std::string_view module, std::string_view name,
                             const std::type_info& type);
WEFT_API void type_set_constructor(TypeDesc* d, SyncFn f);
WEFT_API void type_add_method(TypeDesc* d, std::string_view name, SyncFn f);  // args[0] is self
WEFT_API void type_add_blocking_method(TypeDesc* d, std::string_view name, BlockingFn f);
WEFT_API void type_add_async_method(TypeDesc* d, std::string_view name, AsyncFn f);
WEFT_API void type_add_property(TypeDesc* d, std::string_view name, std::function<Value(const Value& self)> get);
WEFT_API void type_set_repr(TypeDesc* d, std::function<std::string(const Value& self)> f);
WEFT_API void type_set_serialized(TypeDesc* d);
}  // namespace detail

template <class T>
class TypeBuilder;

/// Host functions and constants of one module (`import name`) or of the builtins (globals()).
class WEFT_API ModuleBuilder {
  public:
    template <class F>
    ModuleBuilder& def(std::string_view name, F&& f, DefOptions o = {}) {
        add_sync(name, detail::make_sync(std::forward<F>(f)), std::move(o));
        return *this;
    }
    template <class F>
    ModuleBuilder& def_blocking(std::string_view name, F&& f, DefOptions o = {}) {
        add_blocking(name, detail::make_blocking(std::forward<F>(f)), std::move(o));
        return *this;
    }
    template <class F>
    ModuleBuilder& def_async(std::string_view name, F&& f, DefOptions o = {}) {
        add_async(name, detail::make_async(std::forward<F>(f)), std::move(o));
        return *this;
    }
    /// A constant.
    ModuleBuilder& set(std::string_view name, Value v);
    template <class T>
    TypeBuilder<T> def_type(std::string_view name);

    void add_sync(std::string_view name, detail::SyncFn f, DefOptions o);
    void add_blocking(std::string_view name, detail::BlockingFn f, DefOptions o);
    void add_async(std::string_view name, detail::AsyncFn f, DefOptions o);
    ModuleBuilder(Engine* e, std::string module) : engine_(e), module_(std::move(module)) {}

  private:
    Engine* engine_;
    std::string module_;  // "" for the builtins
};

/// A host type (Wren foreign class / sol2 usertype): instances are shared_ptr<T>.
template <class T>
class TypeBuilder {
  public:
    explicit TypeBuilder(detail::TypeDesc* d) : d_(d) {}
    /// `Name(a, b)` in Weft makes std::make_shared<T>(a, b).
    template <class... A>
    TypeBuilder& constructor() {
        detail::type_set_constructor(d_, [](Context&, Args& a) -> Value {
            if (a.size() != sizeof...(A)) detail::bad_arity(sizeof...(A), a.size());
            return construct<A...>(a, std::index_sequence_for<A...>{});
        });
        return *this;
    }
    /// f(T&, args...) or a member function pointer.
    template <class F>
    TypeBuilder& method(std::string_view name, F f) {
        if constexpr (std::is_member_function_pointer_v<F>) {
            return method_impl(name, f, static_cast<typename detail::fn_traits<F>::args*>(nullptr));
        } else {
            using Tuple = typename detail::fn_traits<F>::args;
            return method_free(name, std::move(f), static_cast<Tuple*>(nullptr));
        }
    }
    /// A method that may block, f(T&, args...): it runs on the blocking pool as def_blocking
    /// does (the calling task parks; no Context), and like it is deferred.
    template <class F>
    TypeBuilder& method_blocking(std::string_view name, F f) {
        using Tuple = typename detail::fn_traits<F>::args;
        return blocking_impl(name, std::move(f), static_cast<Tuple*>(nullptr));
    }
    /// An asynchronous method, f(T&, args..., weft::Completion<R>): returns at once, any thread
    /// resolves the Completion later, as def_async.
    template <class F>
    TypeBuilder& method_async(std::string_view name, F f) {
        using Tuple = typename detail::fn_traits<F>::args;
        constexpr std::size_t n = std::tuple_size_v<Tuple>;
        static_assert(n >= 2, "method_async: f(T&, args..., weft::Completion<R>)");
        detail::type_add_async_method(d_, name,
                                      detail::make_async(async_self<F, Tuple>(std::move(f), std::make_index_sequence<n - 2>{})));
        return *this;
    }
    /// A read-only attribute.
    template <class M>
    TypeBuilder& property(std::string_view name, M T::*member) {
        detail::type_add_property(d_, name, [member](const Value& self) -> Value {
            return Value::from(self.as<std::shared_ptr<T>>().get()->*member);
        });
        return *this;
    }
    /// Calls on one object run one at a time.
    TypeBuilder& serialized() {
        detail::type_set_serialized(d_);
        return *this;
    }
    TypeBuilder& repr(std::function<std::string(const T&)> f) {
        detail::type_set_repr(d_, [f = std::move(f)](const Value& self) { return f(*self.as<std::shared_ptr<T>>()); });
        return *this;
    }

  private:
    template <class... A, std::size_t... I>
    static Value construct(Args& a, std::index_sequence<I...>) {
        return Value::from(std::make_shared<T>(detail::arg_as<A>(a, I)...));
    }
    template <class MF, class... A>
    TypeBuilder& method_impl(std::string_view name, MF mf, std::tuple<A...>*) {
        using R = typename detail::fn_traits<MF>::ret;
        detail::type_add_method(d_, name, [mf](Context&, Args& a) -> Value {
            if (a.size() != sizeof...(A) + 1) detail::bad_arity(sizeof...(A), a.size() - 1);
            auto self = a[0].template as<std::shared_ptr<T>>();
            return call_member<R>(*self, mf, a, std::index_sequence_for<A...>{}, static_cast<std::tuple<A...>*>(nullptr));
        });
        return *this;
    }
    template <class R, class MF, std::size_t... I, class... A>
    static Value call_member(T& obj, MF mf, Args& a, std::index_sequence<I...>, std::tuple<A...>*) {
        if constexpr (std::is_void_v<R>) {
            (obj.*mf)(detail::arg_as<A>(a, I + 1)...);
            return Value();
        } else {
            return Value::from((obj.*mf)(detail::arg_as<A>(a, I + 1)...));
        }
    }
    template <class F, class Self, class... A>
    TypeBuilder& method_free(std::string_view name, F f, std::tuple<Self, A...>*) {
        using R = typename detail::fn_traits<F>::ret;
        detail::type_add_method(d_, name, [f = std::move(f)](Context&, Args& a) mutable -> Value {
            if (a.size() != sizeof...(A) + 1) detail::bad_arity(sizeof...(A), a.size() - 1);
            auto self = a[0].template as<std::shared_ptr<T>>();
            return call_free<R>(f, *self, a, std::index_sequence_for<A...>{}, static_cast<std::tuple<A...>*>(nullptr));
        });
        return *this;
    }
    template <class F, class Self, class... A>
    TypeBuilder& blocking_impl(std::string_view name, F f, std::tuple<Self, A...>*) {
        // The receiver is converted with the arguments, on the worker; f runs on the pool.
        detail::type_add_blocking_method(
            d_, name, detail::make_blocking([f = std::move(f)](std::shared_ptr<T> self, std::decay_t<A>... a) mutable {
                return f(*self, std::move(a)...);
            }));
        return *this;
    }
    template <class F, class Tuple, std::size_t... I>
    static auto async_self(F f, std::index_sequence<I...>) {
        using Done = std::decay_t<std::tuple_element_t<std::tuple_size_v<Tuple> - 1, Tuple>>;
        return [f = std::move(f)](std::shared_ptr<T> self, std::decay_t<std::tuple_element_t<I + 1, Tuple>>... a,
                                  Done done) mutable { f(*self, std::move(a)..., std::move(done)); };
    }
    template <class R, class F, std::size_t... I, class... A>
    static Value call_free(F& f, T& obj, Args& a, std::index_sequence<I...>, std::tuple<A...>*) {
        if constexpr (std::is_void_v<R>) {
            f(obj, detail::arg_as<A>(a, I + 1)...);
            return Value();
        } else {
            return Value::from(f(obj, detail::arg_as<A>(a, I + 1)...));
        }
    }
    detail::TypeDesc* d_;
};

/// A copyable handle that interrupts an Engine from any thread, even after it is gone.
class WEFT_API InterruptHandle {
  public:
    /// Interrupts every running call; false once the Engine is destroyed.
    bool interrupt() const;
    explicit InterruptHandle(std::weak_ptr<detail::EngineCore> c) : core_(std::move(c)) {}

  private:
    std::weak_ptr<detail::EngineCore> core_;
};

struct EngineStats {
    std::size_t calls_running = 0;
    std::size_t live_tasks = 0;
    /// Heap bytes the Engine's scripts hold, as counted for Limits::max_memory (0 until a call
    /// with a memory limit ran), and the most seen at the limit's checks.
    std::size_t memory_bytes = 0;
    std::size_t memory_peak = 0;
    std::uint64_t calls_total = 0;   ///< calls finished (exec, eval, call, call_async)
    std::uint64_t calls_failed = 0;  ///< of which ended by an exception (script error, limit, interrupt)
    bool program_running = false;    ///< a run_program is running
};

/// An isolated Weft world. See the header comment for thread-safety.
class WEFT_API Engine {
  public:
    explicit Engine(EngineOptions options = {});
    /// The `weft` command line's Engine (cli/main.cpp): `options` from its flags plus settings
    /// only the command line has (--trace, --stats, --lisp, its signal handlers). `program` is
    /// an incomplete type outside the library: hosts use the constructor above.
    Engine(EngineOptions options, const detail::ProgramSettings& program);
    /// Interrupts running calls, waits for them, stops its threads (if it owns its runtime).
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // ---- running Weft code. Each blocks the calling host thread until the call's whole task
    // ---- tree has finished (structured concurrency: no task outlives the call).
    /// Runs a file as a program in this Engine's main module.
    void run_file(const std::string& path, const CallOptions& o = {});
    /// Runs a program exactly as `weft run` does (the command line is this call): the file is
    /// the program's own main module (`__main__`; sys.argv[0] is the Engine's name, `args` its
    /// EngineOptions::args; the file's folder is the root of its imports, which it may read),
    /// run as the Engine's one root task; tasks nobody awaited are awaited and actors still
    /// running are stopped at its end. Script errors are not thrown: a compile error's
    /// diagnostic (file:line:col) and an uncaught error's traceback go to the stderr sink, and
    /// the result is the command line's exit status: 0; 1 for an uncaught error; 2 for a compile
    /// error, a failed import or a file that cannot be read; n for `exit(n)`; 130 when
    /// interrupt() stopped it (KeyboardInterrupt is raised in the main task, so its `finally`
    /// blocks and `with` exits run). Capabilities, `max_depth` and `max_tasks` apply; the
    /// per-call budgets of Limits (steps, time, memory, output) apply to calls, not to a
    /// program (a host bounds one with interrupt()). Once per Engine (UsageError the second
    /// time); calls may run beside it. A blocking member (see the thread-safety note above).
    int run_program(const std::string& path);
    /// run_program for program text (`weft -e`, standard input); `name` is its path in
    /// diagnostics and tracebacks.
    int run_program_source(std::string_view source, std::string_view name = "<string>");
    /// Statements in the main module; returns the value of the last expression statement.
    Value exec(std::string_view source, std::string_view name = "<exec>", const CallOptions& o = {});
    /// An expression (REPL-style: it may also be statements ending with an expression).
    template <class T = Value>
    T eval(std::string_view expression, const CallOptions& o = {}) {
        return detail::value_as<T>(exec(expression, "<eval>", o));
    }
    /// Compiles only: CompileError when `source` does not compile.
    void check(std::string_view source, std::string_view name = "<check>");

    /// Calls global `name` of the main module (or a Value callable) with converted arguments
    /// (weft::kw(...) for keywords). Throws ScriptError, Interrupted, LimitExceeded.
    template <class R = Value, class N, class... A,
              std::enable_if_t<std::is_convertible_v<const N&, std::string_view>, int> = 0>
    R call(const N& name, A&&... args) {
        return detail::value_as<R>(call_impl(nullptr, std::string_view(name), pack(std::forward<A>(args)...), {}));
    }
    template <class R = Value, class... A>
    R call(const Value& callable, A&&... args) {
        return detail::value_as<R>(call_impl(&callable, {}, pack(std::forward<A>(args)...), {}));
    }
    template <class R = Value, class N, class... A,
              std::enable_if_t<std::is_convertible_v<const N&, std::string_view>, int> = 0>
    R call_with(const CallOptions& o, const N& name, A&&... args) {
        return detail::value_as<R>(call_impl(nullptr, std::string_view(name), pack(std::forward<A>(args)...), o));
    }
    template <class R = Value, class... A>
    R call_with(const CallOptions& o, const Value& callable, A&&... args) {
        return detail::value_as<R>(call_impl(&callable, {}, pack(std::forward<A>(args)...), o));
    }
    /// call() that returns script errors in the Result instead of throwing them.
    template <class R = Value, class N, class... A>
    Result<R> try_call(const N& name, A&&... args) {
        try {
            if constexpr (std::is_void_v<R>) {
                call<void>(name, std::forward<A>(args)...);
                return Result<void>();
            } else {
                return Result<R>(call<R>(name, std::forward<A>(args)...));
            }
        } catch (const ScriptError& e) {
            return Result<R>(e);
        }
    }
    /// Starts the call and returns at once.
    template <class R = Value, class N, class... A,
              std::enable_if_t<std::is_convertible_v<const N&, std::string_view>, int> = 0>
    Future<R> call_async(const N& name, A&&... args) {
        return Future<R>(call_async_impl(nullptr, std::string_view(name), pack(std::forward<A>(args)...), {}));
    }
    template <class R = Value, class... A>
    Future<R> call_async(const Value& callable, A&&... args) {
        return Future<R>(call_async_impl(&callable, {}, pack(std::forward<A>(args)...), {}));
    }
    template <class R = Value, class... A>
    Future<R> call_async_with(const CallOptions& o, const Value& callable, A&&... args) {
        return Future<R>(call_async_impl(&callable, {}, pack(std::forward<A>(args)...), o));
    }

    /// A global of the main module; None when absent.
    Value global(std::string_view name) const;
    /// A global of a module the Engine's scripts imported (`module` as imported: "config",
    /// "util"; "__main__" is the main module); None when it has no such name or is still running
    /// its top level. UsageError when no script of this Engine imported that module.
    Value global(std::string_view name, std::string_view module) const;
    /// The Engine's capabilities (EngineOptions::capabilities): what every call may at most do.
    const Capabilities& capabilities() const noexcept;
    /// Defines a name in the main module (between calls).
    void set_global(std::string_view name, Value v);

    // ---- host functions, modules, types
    /// Builtins visible in every module.
    ModuleBuilder& globals();
    /// An importable module: `import name`.
    ModuleBuilder& module(std::string_view name);
    template <class F>
    Engine& def(std::string_view name, F&& f, DefOptions o = {}) {
        globals().def(name, std::forward<F>(f), std::move(o));
        return *this;
    }
    template <class F>
    Engine& def_blocking(std::string_view name, F&& f, DefOptions o = {}) {
        globals().def_blocking(name, std::forward<F>(f), std::move(o));
        return *this;
    }
    template <class F>
    Engine& def_async(std::string_view name, F&& f, DefOptions o = {}) {
        globals().def_async(name, std::forward<F>(f), std::move(o));
        return *this;
    }
    template <class T>
    TypeBuilder<T> def_type(std::string_view name) {
        return globals().def_type<T>(name);
    }
    /// Defines a Weft struct `name` in the main module with the fields of a WEFT_RECORD type:
    /// from then on a T the host converts for this Engine (arguments, results of host
    /// functions, set_global, also inside lists, tuples, dicts and other records) arrives as an
    /// instance of it instead of a dict; scripts may construct and annotate with it. T's fields
    /// convert as before. UsageError when `name` is taken by a different struct. Between calls.
    template <class T>
    Engine& def_struct(std::string_view name) {
        def_struct_impl(name, typeid(T), convert<T>::field_names());
        return *this;
    }

    // ---- control
    /// Any thread: every running call throws Interrupted (scripts cannot catch it); a running
    /// run_program is cancelled as Ctrl-C cancels `weft run` (it returns 130).
    void interrupt();
    InterruptHandle interrupt_handle();
    EngineStats stats() const;
    const std::string& name() const noexcept;

    // ---- implementation
    Value call_impl(const Value* callable, std::string_view name, std::vector<Value> args, const CallOptions& o);
    std::shared_ptr<detail::FutureCore> call_async_impl(const Value* callable, std::string_view name,
                                                        std::vector<Value> args, const CallOptions& o);
    detail::EngineCore& core() noexcept { return *core_; }
    void def_struct_impl(std::string_view name, const std::type_info& t, const std::vector<std::string>& fields);

  private:
    template <class... A>
    static std::vector<Value> pack(A&&... args) {
        std::vector<Value> v;
        v.reserve(sizeof...(A));
        (v.push_back(pack_one(std::forward<A>(args))), ...);
        return v;
    }
    template <class A>
    static Value pack_one(A&& a) {
        if constexpr (std::is_same_v<std::decay_t<A>, KwArg>)
            return keyword(std::forward<A>(a));
        else
            return Value::from(std::forward<A>(a));
    }
    static Value keyword(KwArg k);  // a marker Value carrying a keyword argument
    std::shared_ptr<detail::EngineCore> core_;
};

template <class T>
TypeBuilder<T> ModuleBuilder::def_type(std::string_view name) {
    return TypeBuilder<T>(detail::type_desc(*engine_, module_, name, typeid(T)));
}

template <class T>
T Args::get(std::size_t i) const {
    try {
        return (*this)[i].template as<T>();
    } catch (const ConversionError& e) {
        detail::bad_argument(i, e);
    }
}

namespace detail {
WEFT_API Value call_function(const Value& f, std::vector<Value> args);
}
template <class R, class... A>
R Function::operator()(A&&... args) const {
    return detail::value_as<R>(detail::call_function(*this, {Value::from(std::forward<A>(args))...}));
}

}  // namespace api
}  // namespace weft
