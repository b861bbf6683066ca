// Requires: Kotlin 1.3+ on a JDK 17+, standard library only (Debian: apt install kotlin openjdk-17-jdk-headless).
// Run: kotlinc Example.kt -include-runtime -d example.jar && WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 java -jar example.jar
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.util.Base64
import java.util.HexFormat
import java.util.concurrent.atomic.AtomicLong
import javax.crypto.Mac
import javax.crypto.spec.SecretKeySpec
import kotlin.system.exitProcess

private val lastNonce = AtomicLong()
private val client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

/** Unix ms, max(now_ms, last + 1): unique even when threads share a millisecond. */
fun nextNonce(): Long = lastNonce.updateAndGet { last -> maxOf(System.currentTimeMillis(), last + 1) }

fun call(baseUrl: String, key: String, secret: String, path: String): Boolean {
    // Build the body once; sign and send exactly these bytes.
    val body = "{\"request\":\"$path\",\"nonce\":${nextNonce()},\"nonceWindow\":true}".toByteArray(Charsets.UTF_8)
    val payload = Base64.getEncoder().encodeToString(body)
    val mac = Mac.getInstance("HmacSHA512")
    mac.init(SecretKeySpec(secret.toByteArray(Charsets.UTF_8), "HmacSHA512"))
    val signature = HexFormat.of().formatHex(mac.doFinal(payload.toByteArray(Charsets.UTF_8)))
    val request = HttpRequest.newBuilder(URI.create(baseUrl.trimEnd('/') + path)).timeout(Duration.ofSeconds(10))
        .header("Content-Type", "application/json").header("X-TXC-APIKEY", key)
        .header("X-TXC-PAYLOAD", payload).header("X-TXC-SIGNATURE", signature)
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build()
    val response = try {
        client.send(request, HttpResponse.BodyHandlers.ofString())
    } catch (e: Exception) { // connection refused, timeout, ...
        System.err.println("POST $path failed: $e")
        return false
    }
    if (response.statusCode() == 200) {
        println("POST $path 200 ${response.body()}")
        return true
    }
    // The error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
    System.err.println("POST $path ${response.statusCode()} ${response.body()}")
    return false
}

fun main() {
    val key = System.getenv("WBAUTH_API_KEY")
    val secret = System.getenv("WBAUTH_API_SECRET")
    if (key.isNullOrEmpty() || secret.isNullOrEmpty()) {
        System.err.println("set WBAUTH_API_KEY and WBAUTH_API_SECRET")
        exitProcess(1)
    }
    val baseUrl = System.getenv("WBAUTH_BASE_URL") ?: "https://whitebit.com"
    val results = listOf("/api/v4/trade-account/balance", "/api/v4/jwt").map { call(baseUrl, key, secret, it) }
    exitProcess(if (results.all { it }) 0 else 1)
}
