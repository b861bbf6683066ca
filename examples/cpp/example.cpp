// Requires: a C++17 compiler, libcurl and OpenSSL (Debian: apt install g++ libcurl4-openssl-dev libssl-dev).
// Run: g++ -std=c++17 example.cpp -o example -lcurl -lcrypto && WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 ./example
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>

// Unix ms, max(now_ms, last + 1): unique even when threads share a millisecond.
long long next_nonce() {
    static std::mutex mutex;
    static long long last = 0;
    std::lock_guard<std::mutex> lock(mutex);
    using namespace std::chrono;
    return last = std::max<long long>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(), last + 1);
}

bool call(const std::string& base_url, const std::string& key, const std::string& secret, const std::string& path) {
    // Build the body once; sign and send exactly these bytes.
    std::string body = "{\"request\":\"" + path + "\",\"nonce\":" + std::to_string(next_nonce()) + ",\"nonceWindow\":true}";
    std::string payload(4 * ((body.size() + 2) / 3), '\0'), signature, text;
    EVP_EncodeBlock((unsigned char*)payload.data(), (const unsigned char*)body.data(), (int)body.size());
    unsigned char mac[EVP_MAX_MD_SIZE]; // HMAC-SHA512(key = secret, message = payload), as lowercase hex
    unsigned int mac_len = 0;
    HMAC(EVP_sha512(), secret.data(), (int)secret.size(), (const unsigned char*)payload.data(), payload.size(), mac, &mac_len);
    for (unsigned int i = 0; i < mac_len; i++) signature += {"0123456789abcdef"[mac[i] >> 4], "0123456789abcdef"[mac[i] & 15]};
    curl_slist* headers = nullptr;
    for (auto h : {std::string("Content-Type: application/json"), "X-TXC-APIKEY: " + key, "X-TXC-PAYLOAD: " + payload, "X-TXC-SIGNATURE: " + signature})
        headers = curl_slist_append(headers, h.c_str());
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, (base_url.substr(0, base_url.find_last_not_of('/') + 1) + path).c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str()); // sent as is (and makes this a POST)
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, (+[](char* data, size_t, size_t n, void* text) { return ((std::string*)text)->append(data, n), n; }));
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &text);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) std::cerr << "POST " << path << " failed: " << curl_easy_strerror(rc) << "\n";
    else (status == 200 ? std::cout : std::cerr) << "POST " << path << " " << status << " " << text << "\n"; // or 401 {"code":10,...}
    return rc == CURLE_OK && status == 200;
}

int main() {
    const char *key = std::getenv("WBAUTH_API_KEY"), *secret = std::getenv("WBAUTH_API_SECRET"), *base = std::getenv("WBAUTH_BASE_URL");
    if (!key || !*key || !secret || !*secret) return std::cerr << "set WBAUTH_API_KEY and WBAUTH_API_SECRET\n", 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    bool ok = true;
    for (const char* path : {"/api/v4/trade-account/balance", "/api/v4/jwt"}) ok = call(base ? base : "https://whitebit.com", key, secret, path) && ok;
    return ok ? 0 : 1;
}
