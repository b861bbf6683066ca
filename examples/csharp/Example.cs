// Requires: Mono (Debian: apt install mono-mcs mono-runtime libmono-system-net-http4.0-cil) or .NET 10+; standard library only.
// Run: mcs -r:System.Net.Http Example.cs && WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 mono Example.exe (.NET: dotnet run Example.cs)
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
using System;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

public static class Example {
    static readonly HttpClient Client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
    static readonly object NonceLock = new object();
    static long lastNonce;

    // Unix ms, max(now_ms, last + 1): unique even when threads share a millisecond.
    static long NextNonce() {
        lock (NonceLock) return lastNonce = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), lastNonce + 1);
    }

    static bool Call(string baseUrl, string key, string secret, string path) {
        // Build the body once; sign and send exactly these bytes.
        byte[] body = Encoding.UTF8.GetBytes("{\"request\":\"" + path + "\",\"nonce\":" + NextNonce() + ",\"nonceWindow\":true}");
        string payload = Convert.ToBase64String(body);
        byte[] mac;
        using (var hmac = new HMACSHA512(Encoding.UTF8.GetBytes(secret))) mac = hmac.ComputeHash(Encoding.UTF8.GetBytes(payload));
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json"); // exactly, no "; charset"
        var request = new HttpRequestMessage(HttpMethod.Post, baseUrl.TrimEnd('/') + path) { Content = content };
        request.Headers.Add("X-TXC-APIKEY", key);
        request.Headers.Add("X-TXC-PAYLOAD", payload);
        request.Headers.Add("X-TXC-SIGNATURE", BitConverter.ToString(mac).Replace("-", "").ToLowerInvariant());
        try {
            using (HttpResponseMessage response = Client.SendAsync(request).GetAwaiter().GetResult()) {
                string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                bool ok = response.StatusCode == System.Net.HttpStatusCode.OK;
                // The answer, or the error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
                (ok ? Console.Out : Console.Error).WriteLine("POST " + path + " " + (int)response.StatusCode + " " + text);
                return ok;
            }
        } catch (Exception e) { // connection refused, timeout, ...
            Console.Error.WriteLine("POST " + path + " failed: " + e.GetBaseException().Message);
            return false;
        }
    }

    public static int Main() {
        var key = Environment.GetEnvironmentVariable("WBAUTH_API_KEY"); // var: string? where nullable checks are on
        var secret = Environment.GetEnvironmentVariable("WBAUTH_API_SECRET");
        if (string.IsNullOrEmpty(key) || string.IsNullOrEmpty(secret)) {
            Console.Error.WriteLine("set WBAUTH_API_KEY and WBAUTH_API_SECRET");
            return 1;
        }
        string baseUrl = Environment.GetEnvironmentVariable("WBAUTH_BASE_URL") ?? "https://whitebit.com";
        bool ok = true;
        foreach (string path in new[] { "/api/v4/trade-account/balance", "/api/v4/jwt" }) ok = Call(baseUrl, key, secret, path) && ok;
        return ok ? 0 : 1;
    }
}
