// value.h — the Weft value: a 16-byte tagged union with unboxed None, bool, int
// and float, and a pointer to a reference-counted heap object otherwise.
//
// Why a tagged union and not NaN-boxing: Weft ints are full 64-bit signed
// integers (overflow raises OverflowError), which NaN-boxing cannot hold
// unboxed. 16 bytes per register is what Lua 5.4's TValue costs too.
//
// Why reference counting: values are immutable or copy-on-write, so cycles cannot
// form except through atoms and actors (which own their contents explicitly).
// A count also tells a mutating operation whether the storage is shared: rc == 1
// means "this variable is the only holder, mutate in place", otherwise copy first.
// That is how value semantics stay cheap (see docs/architecture.md).
//
// Thread safety: counts are plain integers while an object is reachable from one
// thread only. When a value crosses to another task (channel send, capture by a
// spawned task, atom store) the concurrency layer calls share() on it, which sets
// kShared on the whole reachable graph; from then on the count is updated with
// atomic operations (via std::atomic_ref). The flag test is one predictable
// branch on the hot path.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <utility>

namespace weft {

enum class ObjType : uint8_t {
    Str,
    Bytes,
    List,
    Tuple,
    Dict,
    Set,
    Range,
    Slice,
    Iterator,     // built-in iterators (list/dict/str/range/enumerate/zip/map/filter...)
    Function,     // a Weft closure
    Native,       // a C++ function (builtin or bound built-in method)
    BoundMethod,  // a Weft method bound to its receiver
    StructType,   // a struct declaration (also the built-in error types)
    Struct,       // a struct instance (also error values)
    Module,
    TypeObj,      // a built-in type used as a value: int, str, list, ...
    Promise,      // reserved for the concurrency issue
    Opaque,       // host objects (channels, atoms, file handles, ...)
};

struct Obj {
    static constexpr uint8_t kShared = 1;     // reachable from several threads: atomic counts
    static constexpr uint8_t kImmortal = 2;   // never freed (interned names, singletons)

    uint32_t rc = 1;
    ObjType type;
    uint8_t flags = 0;

    explicit Obj(ObjType t) : type(t) {}
    Obj(const Obj&) = delete;
    Obj& operator=(const Obj&) = delete;
    virtual ~Obj() = default;
};

[[gnu::always_inline]] inline void obj_incref(Obj* o) {
    if (__builtin_expect(o->flags == 0, 1)) {
        ++o->rc;
    } else if (!(o->flags & Obj::kImmortal)) {
        std::atomic_ref<uint32_t>(o->rc).fetch_add(1, std::memory_order_relaxed);
    }
}

// Frees an object whose count reached zero (out of line: keeps decref small).
// Releasing a container releases its items, whose destructors release theirs:
// past a small nesting depth the objects that reach zero are queued and freed
// by a loop instead, so a value nested a million deep is freed in constant
// native stack (vm/objects.cpp).
[[gnu::noinline]] void obj_free(Obj* o) noexcept;

[[gnu::always_inline]] inline void obj_decref(Obj* o) {
    if (__builtin_expect(o->flags == 0, 1)) {
        if (--o->rc == 0) obj_free(o);
    } else if (!(o->flags & Obj::kImmortal)) {
        if (std::atomic_ref<uint32_t>(o->rc).fetch_sub(1, std::memory_order_acq_rel) == 1) obj_free(o);
    }
}

// Is this holder the only one? (Mutate in place when true.)
inline bool obj_unique(const Obj* o) {
    if (__builtin_expect(o->flags == 0, 1)) return o->rc == 1;
    if (o->flags & Obj::kImmortal) return false;
    return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(o->rc)).load(std::memory_order_acquire) == 1;
}

// Called by a holder about to mutate an object in place after obj_unique()
// said it is the only holder: no other thread can reach the object any more, so
// its counts may go back to plain integers. This also keeps the sharing
// invariant (a shared object points only to shared objects, vm/share.cpp) when
// unshared values are then stored into it.
template <class T>
[[gnu::always_inline]] inline T* obj_localize(T* o) {
    if (__builtin_expect(o->flags & 1, 0)) o->flags &= uint8_t(~1);  // Obj::kShared
    return o;
}

enum class Tag : uint8_t { None, Bool, Int, Float, Object };

class Value {
public:
    Value() : tag_(Tag::None) { u_.i = 0; }
    static Value none() { return Value(); }
    static Value boolean(bool b) { Value v; v.tag_ = Tag::Bool; v.u_.i = 0; v.u_.b = b; return v; }
    static Value integer(int64_t i) { Value v; v.tag_ = Tag::Int; v.u_.i = i; return v; }
    static Value number(double d) { Value v; v.tag_ = Tag::Float; v.u_.f = d; return v; }
    // Takes over one reference (the caller's "new" reference).
    static Value adopt(Obj* o) { Value v; v.tag_ = Tag::Object; v.u_.o = o; return v; }
    // Adds a reference.
    static Value borrow(Obj* o) { obj_incref(o); return adopt(o); }

    Value(const Value& other) : tag_(other.tag_), u_(other.u_) {
        if (tag_ == Tag::Object) obj_incref(u_.o);
    }
    Value(Value&& other) noexcept : tag_(other.tag_), u_(other.u_) { other.tag_ = Tag::None; }
    [[gnu::always_inline]] Value& operator=(const Value& other) {
        if (other.tag_ == Tag::Object) obj_incref(other.u_.o);
        release();
        tag_ = other.tag_;
        u_ = other.u_;
        return *this;
    }
    [[gnu::always_inline]] Value& operator=(Value&& other) noexcept {
        if (this != &other) {
            release();
            tag_ = other.tag_;
            u_ = other.u_;
            other.tag_ = Tag::None;
        }
        return *this;
    }
    ~Value() { release(); }

    Tag tag() const { return tag_; }
    bool is_none() const { return tag_ == Tag::None; }
    bool is_bool() const { return tag_ == Tag::Bool; }
    bool is_int() const { return tag_ == Tag::Int; }
    bool is_float() const { return tag_ == Tag::Float; }
    bool is_number() const { return tag_ == Tag::Int || tag_ == Tag::Float; }
    bool is_obj() const { return tag_ == Tag::Object; }
    bool is(ObjType t) const { return tag_ == Tag::Object && u_.o->type == t; }

    bool as_bool() const { return u_.b; }
    int64_t as_int() const { return u_.i; }
    double as_float() const { return u_.f; }
    // int or float as double (caller checked is_number()).
    double as_number() const { return tag_ == Tag::Int ? double(u_.i) : u_.f; }
    Obj* as_obj() const { return u_.o; }
    template <class T> T* as() const { return static_cast<T*>(u_.o); }

    // Raw mutation for the interpreter's fast paths (no refcount traffic).
    [[gnu::always_inline]] void set_int(int64_t i) { release(); tag_ = Tag::Int; u_.i = i; }
    [[gnu::always_inline]] void set_float(double d) { release(); tag_ = Tag::Float; u_.f = d; }

    // Drops the held reference and becomes None.
    [[gnu::always_inline]] void clear() {
        release();
        tag_ = Tag::None;
    }

    // Releases ownership without decrementing (the caller takes the reference).
    Obj* release_obj() { Obj* o = u_.o; tag_ = Tag::None; return o; }

    // Racy-copy support for seqlock-protected slots (module globals, function.h):
    // the two 8-byte words of a Value read and written with relaxed atomics, so
    // a reader on another thread never tears a value it then validates.
    void load_words(uint64_t w[2]) const {
        auto* p = reinterpret_cast<uint64_t*>(const_cast<Value*>(this));
        w[0] = std::atomic_ref<uint64_t>(p[0]).load(std::memory_order_relaxed);
        w[1] = std::atomic_ref<uint64_t>(p[1]).load(std::memory_order_relaxed);
    }
    void store_words(const uint64_t w[2]) {
        auto* p = reinterpret_cast<uint64_t*>(this);
        std::atomic_ref<uint64_t>(p[0]).store(w[0], std::memory_order_relaxed);
        std::atomic_ref<uint64_t>(p[1]).store(w[1], std::memory_order_relaxed);
    }
    // A new reference to the value whose words are `w`.
    static Value from_words(const uint64_t w[2]) {
        Value v;
        std::memcpy(static_cast<void*>(&v), w, sizeof(Value));
        if (v.tag_ == Tag::Object) obj_incref(v.u_.o);
        return v;
    }

private:
    [[gnu::always_inline]] void release() {
        if (tag_ == Tag::Object) obj_decref(u_.o);
    }
    Tag tag_;
    union {
        bool b;
        int64_t i;
        double f;
        Obj* o;
    } u_;
};

static_assert(sizeof(Value) == 16);

}  // namespace weft
