// Requires: JDK 17+, standard library only (Debian: apt install openjdk-17-jdk-headless).
// Run: WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 java Example.java
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
import static java.nio.charset.StandardCharsets.UTF_8;
import java.net.URI;
import java.net.http.*;
import java.util.*;
import java.util.concurrent.atomic.AtomicLong;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Example {
    private static final AtomicLong LAST_NONCE = new AtomicLong();
    private static final HttpClient CLIENT = HttpClient.newHttpClient();

    /** Unix ms, max(now_ms, last + 1): unique even when threads share a millisecond. */
    static long nextNonce() {
        return LAST_NONCE.updateAndGet(last -> Math.max(System.currentTimeMillis(), last + 1));
    }

    static boolean call(String baseUrl, String key, String secret, String path) throws Exception {
        // Build the body once; sign and send exactly these bytes.
        byte[] body = ("{\"request\":\"" + path + "\",\"nonce\":" + nextNonce() + ",\"nonceWindow\":true}").getBytes(UTF_8);
        String payload = Base64.getEncoder().encodeToString(body);
        Mac mac = Mac.getInstance("HmacSHA512");
        mac.init(new SecretKeySpec(secret.getBytes(UTF_8), "HmacSHA512"));
        String signature = HexFormat.of().formatHex(mac.doFinal(payload.getBytes(UTF_8)));
        HttpRequest request = HttpRequest.newBuilder(URI.create(baseUrl.replaceAll("/+$", "") + path))
                .header("Content-Type", "application/json").header("X-TXC-APIKEY", key)
                .header("X-TXC-PAYLOAD", payload).header("X-TXC-SIGNATURE", signature)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build();
        HttpResponse<String> response = CLIENT.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 200) {
            System.out.println("POST " + path + " 200 " + response.body());
            return true;
        }
        // The error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
        System.err.println("POST " + path + " " + response.statusCode() + " " + response.body());
        return false;
    }

    public static void main(String[] args) throws Exception {
        String key = Objects.requireNonNull(System.getenv("WBAUTH_API_KEY"), "set WBAUTH_API_KEY");
        String secret = Objects.requireNonNull(System.getenv("WBAUTH_API_SECRET"), "set WBAUTH_API_SECRET");
        String baseUrl = System.getenv().getOrDefault("WBAUTH_BASE_URL", "https://whitebit.com");
        boolean ok = true;
        for (String path : new String[] {"/api/v4/trade-account/balance", "/api/v4/jwt"}) {
            try {
                ok &= call(baseUrl, key, secret, path);
            } catch (Exception e) { // connection refused, timeout, ...
                System.err.println("POST " + path + " failed: " + e);
                ok = false;
            }
        }
        System.exit(ok ? 0 : 1);
    }
}
