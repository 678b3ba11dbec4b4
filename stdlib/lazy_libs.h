// lazy_libs.h — libcurl and libpq, loaded with dlopen the first time a program uses them.
//
// Why: linking them made every `weft` process pay for them at start-up, used or not. The two
// bring 30 more shared objects (GnuTLS, Kerberos, LDAP, SSH, ...) whose symbols the dynamic
// linker resolves before main: 12.6 M of the 23.6 M instructions of `weft -e pass`, 4.7 ms of
// its 9.5 ms (callgrind, and the best of 30 runs of a C program linked with -lcurl -lpq against
// one linked with neither; BENCHMARKS.md "Start-up"). A script that never makes an HTTP request
// or opens a PostgreSQL connection now never loads them; one that does pays the same cost once,
// at its first request.
//
// How: each library's functions that the stdlib calls are pointers in a table (the X-macro lists
// below), filled by dlsym from the library's versioned name (libcurl.so.4, libpq.so.5: the ABI
// the headers describe) on the first call of curl() or pq(). Call sites write
// `curl().easy_init()` for `curl_easy_init()` and `pq().status(c)` for `PQstatus(c)`.
// Thread-safe (a function-local static). If the library cannot be loaded, the first use raises
// IOError naming the library and dlerror()'s reason; nothing is loaded again after a failure
// (the error is kept and raised by every later use).
#pragma once

#include <curl/curl.h>
#include <libpq-fe.h>

namespace weft::lazy {

// The libcurl functions the http module calls (name without the `curl_` prefix).
#define WEFT_CURL_FUNCTIONS(X)                                             \
    X(global_init) X(easy_init) X(easy_cleanup) X(easy_reset) X(easy_setopt) \
    X(easy_getinfo) X(easy_strerror) X(multi_init) X(multi_cleanup)        \
    X(multi_setopt) X(multi_add_handle) X(multi_remove_handle)             \
    X(multi_socket_action) X(multi_info_read) X(multi_strerror) X(url)     \
    X(url_cleanup) X(url_get) X(url_set) X(url_strerror) X(free)           \
    X(slist_append) X(slist_free_all)

// The libpq functions db.postgres calls (name without the `PQ` prefix).
#define WEFT_PQ_FUNCTIONS(X)                                                          \
    X(status) X(resultErrorField) X(getResult) X(errorMessage) X(connectStartParams)  \
    X(clear) X(socket) X(isBusy) X(consumeInput) X(cancel) X(transactionStatus)       \
    X(sendQueryParams) X(resultStatus) X(freemem) X(connectPoll) X(unescapeBytea)     \
    X(setnonblocking) X(setNoticeProcessor) X(sendQuery) X(resultErrorMessage)        \
    X(ntuples) X(nfields) X(getvalue) X(getlength) X(getisnull) X(getCancel) X(ftype) \
    X(freeCancel) X(fname) X(flush) X(finish) X(conninfoParse) X(conninfoFree) X(cmdTuples)

struct CurlApi {
#define WEFT_CURL_MEMBER(name) decltype(&::curl_##name) name = nullptr;
    WEFT_CURL_FUNCTIONS(WEFT_CURL_MEMBER)
#undef WEFT_CURL_MEMBER
};

struct PqApi {
#define WEFT_PQ_MEMBER(name) decltype(&::PQ##name) name = nullptr;
    WEFT_PQ_FUNCTIONS(WEFT_PQ_MEMBER)
#undef WEFT_PQ_MEMBER
};

// The loaded libcurl (loads it on the first call; raises IOError if it cannot). Any thread.
const CurlApi& curl();
// The loaded libpq (likewise).
const PqApi& pq();

}  // namespace weft::lazy
