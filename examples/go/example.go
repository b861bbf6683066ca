// Requires: Go 1.19+, standard library only (Debian: apt install golang-go).
// Run: WBAUTH_API_KEY=... WBAUTH_API_SECRET=... WBAUTH_BASE_URL=http://127.0.0.1:8080 go run example.go
// Shows: signed window-mode calls to /api/v4/trade-account/balance and /api/v4/jwt (unique ms nonce).
package main

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

var nonceMu, lastNonce = new(sync.Mutex), int64(0)

func call(path string) (string, error) {
	nonceMu.Lock() // nonce = max(now_ms, last+1): unique even when goroutines share a millisecond
	if lastNonce++; time.Now().UnixMilli() > lastNonce {
		lastNonce = time.Now().UnixMilli()
	}
	// Build the body once (%q quotes an ASCII path as JSON does); sign and send exactly these bytes.
	body := fmt.Sprintf(`{"request":%q,"nonce":%d,"nonceWindow":true}`, path, lastNonce)
	nonceMu.Unlock()
	payload := base64.StdEncoding.EncodeToString([]byte(body))
	mac := hmac.New(sha512.New, []byte(os.Getenv("WBAUTH_API_SECRET")))
	mac.Write([]byte(payload))
	req, err := http.NewRequest("POST", os.Getenv("WBAUTH_BASE_URL")+path, strings.NewReader(body))
	var resp *http.Response
	if err == nil {
		req.Header = http.Header{"Content-Type": {"application/json"}, "X-Txc-Apikey": {os.Getenv("WBAUTH_API_KEY")},
			"X-Txc-Payload": {payload}, "X-Txc-Signature": {fmt.Sprintf("%x", mac.Sum(nil))}}
		resp, err = http.DefaultClient.Do(req)
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK { // e.g. 401 {"code":10,"message":"Unauthorized request."}
		err = fmt.Errorf("%d %s", resp.StatusCode, text)
	}
	return string(text), err
}

func main() {
	for _, path := range []string{"/api/v4/trade-account/balance", "/api/v4/jwt"} {
		if text, err := call(path); err != nil {
			fmt.Fprintf(os.Stderr, "POST %s %v\n", path, err)
			defer os.Exit(1) // after every call has printed its answer
		} else {
			fmt.Printf("POST %s 200 %s\n", path, text)
		}
	}
}
