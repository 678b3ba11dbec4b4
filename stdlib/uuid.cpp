// uuid.cpp — the `uuid` module: uuid4() returns a random UUID (RFC 4122
// version 4) as its canonical 36-character string.
//
// The 122 random bits come from the kernel's CSPRNG (getrandom), not from the
// `random` module's Mersenne Twister: UUIDs are used as unguessable ids.
#include <sys/random.h>

#include <cerrno>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"

namespace weft {

namespace {

Value u_uuid4(CallContext&, const CallArgs& a) {
    stdlib::Params p(a, "uuid4", {}, 0);
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw WeftError(ErrorKind::IOError,
                            std::string("uuid4(): getrandom failed: ") + strerror(errno));
        }
        got += size_t(n);
    }
    b[6] = (b[6] & 0x0F) | 0x40;  // version 4
    b[8] = (b[8] & 0x3F) | 0x80;  // RFC 4122 variant
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += kHex[b[i] >> 4];
        s += kHex[b[i] & 0xF];
    }
    return make_str(std::move(s));
}

}  // namespace

void init_uuid_module(ModuleObj& m) {
    stdlib::define_fn(m, "uuid4", u_uuid4);
}

}  // namespace weft
