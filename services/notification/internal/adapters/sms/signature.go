package sms

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Twilio's webhook signature is HMAC-SHA1
	"encoding/base64"
	"net/url"
	"slices"
)

// SignatureHeader carries a webhook's signature.
const SignatureHeader = "X-Twilio-Signature"

// Signature is the Twilio-style signature of a webhook: base64 of HMAC-SHA1, keyed with the
// auth token, over the full URL the provider was given followed by every POST parameter,
// sorted by name, as name then value.
func Signature(token, fullURL string, params url.Values) string {
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(fullURL))
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range params[k] {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidSignature reports whether sig signs fullURL and params with token (constant time).
func ValidSignature(token, fullURL string, params url.Values, sig string) bool {
	want := Signature(token, fullURL, params)
	return sig != "" && hmac.Equal([]byte(want), []byte(sig))
}
