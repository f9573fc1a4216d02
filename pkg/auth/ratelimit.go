package auth

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// Limiter is a token bucket per client key (an IP address, a token's subject): each key may
// make Burst requests at once, refilled at PerMinute a minute. Keys idle long enough to be full
// again are forgotten, so memory stays bounded by the clients active within that time (and at
// most maxKeys; past that, the fullest buckets are dropped first).
type Limiter struct {
	perMinute float64
	burst     float64
	now       func() time.Time
	mu        sync.Mutex
	buckets   map[string]*bucket
	swept     time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxKeys bounds the buckets a limiter keeps (a flood of distinct keys cannot grow it further).
const maxKeys = 100_000

// NewLimiter returns a limiter allowing burst requests at once per key, refilled at perMinute
// a minute. perMinute <= 0 turns limiting off (every request is allowed).
func NewLimiter(perMinute, burst int) *Limiter {
	return &Limiter{perMinute: float64(perMinute), burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket. When the bucket is empty it returns false and how
// long until a token is back.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || l.perMinute <= 0 {
		return true, 0
	}
	now := l.now()
	perSecond := l.perMinute / 60
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*perSecond)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
	return false, wait
}

// sweep forgets buckets that have refilled (a new bucket starts full anyway), at most once a
// minute; over maxKeys it also forgets the oldest. l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute && len(l.buckets) < maxKeys {
		return
	}
	l.swept = now
	full := time.Duration(l.burst / (l.perMinute / 60) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
	if over := len(l.buckets) - maxKeys/2; over > 0 && len(l.buckets) >= maxKeys {
		keys := make([]string, 0, len(l.buckets))
		for k := range l.buckets {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return l.buckets[a].at.Compare(l.buckets[b].at) })
		for _, k := range keys[:over] {
			delete(l.buckets, k)
		}
	}
}

// retryAfter is the Retry-After value (whole seconds, at least 1) for wait.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// ClientIP is the address a request came from (the connection's peer: a proxy in front of
// the service must itself limit per client, or be the only client).
func ClientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Middleware limits next per key(r): over the limit it answers 429 Too Many Requests with
// Retry-After, and next does not run.
func (l *Limiter) Middleware(key func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.Allow(key(r)); !ok {
			w.Header().Set("Retry-After", retryAfter(wait))
			http.Error(w, "too many requests: try again later", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// UnaryInterceptor limits the given procedures (all when none are given) per caller: the
// token's subject (so it must run after authentication), or the peer address without one.
// Over the limit the call fails with resource_exhausted (HTTP 429) and a Retry-After header.
func (l *Limiter) UnaryInterceptor(procedures ...string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if len(procedures) > 0 && !slices.Contains(procedures, req.Spec().Procedure) {
				return next(ctx, req)
			}
			key := "peer:" + req.Peer().Addr
			if host, _, err := net.SplitHostPort(req.Peer().Addr); err == nil {
				key = "peer:" + host
			}
			if p := PrincipalFrom(ctx); p != nil {
				key = "sub:" + p.Subject
			}
			if ok, wait := l.Allow(key); !ok {
				err := connect.NewError(connect.CodeResourceExhausted, errors.New("too many requests: try again in "+retryAfter(wait)+" s"))
				err.Meta().Set("Retry-After", retryAfter(wait))
				return nil, err
			}
			return next(ctx, req)
		}
	}
}

// withClock sets the limiter's clock (tests).
func (l *Limiter) withClock(now func() time.Time) *Limiter { l.now = now; return l }
