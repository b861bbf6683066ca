# Requires: Ruby 2.7+, standard library only (Debian: apt install ruby).
# Run: WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 ruby example.rb
# Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
require "base64"
require "json"
require "net/http"
require "openssl"

# Unix ms, max(now_ms, last + 1): unique even when threads share a millisecond.
class NonceSource
  def initialize
    @lock = Mutex.new
    @last = 0
  end

  def next
    @lock.synchronize { @last = [Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond), @last + 1].max }
  end
end
NONCES = NonceSource.new

def call(base_url, key, secret, path)
  # Build the body once; sign and send exactly this string.
  body = JSON.generate({ request: path, nonce: NONCES.next, nonceWindow: true })
  payload = Base64.strict_encode64(body)
  signature = OpenSSL::HMAC.hexdigest("SHA512", secret, payload)
  uri = URI(base_url.chomp("/") + path)
  request = Net::HTTP::Post.new(uri, "Content-Type" => "application/json", "X-TXC-APIKEY" => key,
                                     "X-TXC-PAYLOAD" => payload, "X-TXC-SIGNATURE" => signature)
  request.body = body
  response = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https") { |http| http.request(request) }
  if response.code == "200"
    puts "POST #{path} 200 #{response.body}"
    return true
  end
  # The error as the server sent it, e.g. 401 {"code":10,"message":"Unauthorized request."}
  warn "POST #{path} #{response.code} #{response.body}"
  false
rescue StandardError => e
  warn "POST #{path} failed: #{e.message}"
  false
end

key, secret = ENV["WBAUTH_API_KEY"], ENV["WBAUTH_API_SECRET"]
abort "set WBAUTH_API_KEY and WBAUTH_API_SECRET" if key.to_s.empty? || secret.to_s.empty?
base_url = ENV.fetch("WBAUTH_BASE_URL", "https://whitebit.com")
results = ["/api/v4/trade-account/balance", "/api/v4/jwt"].map { |path| call(base_url, key, secret, path) }
exit(results.all? ? 0 : 1)
