<?php
// Requires: PHP 8 CLI with the curl extension (Debian: apt install php-cli php-curl).
// Run: WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 php example.php
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).

// Unix ms, max(now_ms, last + 1). PHP serves requests from many processes, so the last nonce lives
// in a file guarded by flock(): unique even when processes share a millisecond.
function next_nonce(): int
{
    $file = fopen(sys_get_temp_dir() . '/wbauth-nonce.' . posix_getuid(), 'c+');
    flock($file, LOCK_EX);
    $nonce = max((int) floor(microtime(true) * 1000), (int) stream_get_contents($file) + 1);
    ftruncate($file, 0);
    rewind($file);
    fwrite($file, (string) $nonce);
    fclose($file); // also releases the lock
    return $nonce;
}

function call(string $baseUrl, string $key, string $secret, string $path): bool
{
    // Build the body once; sign and send exactly this string.
    $body = json_encode(['request' => $path, 'nonce' => next_nonce(), 'nonceWindow' => true], JSON_UNESCAPED_SLASHES);
    $payload = base64_encode($body);
    $signature = hash_hmac('sha512', $payload, $secret);
    $ch = curl_init(rtrim($baseUrl, '/') . $path);
    curl_setopt_array($ch, [
        CURLOPT_POSTFIELDS => $body, // a string is sent as is (and makes this a POST)
        CURLOPT_HTTPHEADER => ['Content-Type: application/json', "X-TXC-APIKEY: $key",
            "X-TXC-PAYLOAD: $payload", "X-TXC-SIGNATURE: $signature"],
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 10,
    ]);
    $text = curl_exec($ch);
    if ($text === false) {
        fwrite(STDERR, "POST $path failed: " . curl_error($ch) . "\n");
        return false;
    }
    $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    if ($status === 200) {
        echo "POST $path 200 $text\n";
        return true;
    }
    // The error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
    fwrite(STDERR, "POST $path $status $text\n");
    return false;
}

[$key, $secret] = [getenv('WBAUTH_API_KEY'), getenv('WBAUTH_API_SECRET')];
if (!$key || !$secret) {
    fwrite(STDERR, "set WBAUTH_API_KEY and WBAUTH_API_SECRET\n");
    exit(1);
}
$baseUrl = getenv('WBAUTH_BASE_URL') ?: 'https://whitebit.com';
$ok = true;
foreach (['/api/v4/trade-account/balance', '/api/v4/jwt'] as $path) {
    $ok = call($baseUrl, $key, $secret, $path) && $ok;
}
exit($ok ? 0 : 1);
