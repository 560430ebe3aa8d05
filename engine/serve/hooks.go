package serve

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook headers. The signature is HMAC-SHA256, keyed with the hook secret, of
// "<timestamp>.<flow>.<body>": the timestamp (Unix seconds) as sent in TimestampHeader, the
// flow id of the URL and the request body as sent, so that a signature is good for one flow,
// one body and five minutes.
const (
	TimestampHeader = "X-Dataflow-Timestamp"
	SignatureHeader = "X-Dataflow-Signature" // "sha256=" and the hex digest
)

// hookWindow is how old (or how far ahead, for a clock that runs fast) a webhook's timestamp
// may be; a signature is accepted once within it.
const hookWindow = 5 * time.Minute

// maxHookBody bounds what a webhook may send: the body only proves the signature, and a
// change notice is small.
const maxHookBody = 1 << 20

// Sign returns the SignatureHeader value for a webhook of flow sent at ts with body.
func Sign(secret, flow string, ts time.Time, body []byte) string {
	return "sha256=" + hex.EncodeToString(signature(secret, strconv.FormatInt(ts.Unix(), 10), flow, body))
}

func signature(secret, ts, flow string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s.%s.", ts, flow)
	m.Write(body)
	return m.Sum(nil)
}

// hook queues a run of the flow now, for a signed POST /hooks/{flow}.
func (s *Service) hook(w http.ResponseWriter, r *http.Request) {
	flow := r.PathValue("flow")
	if s.cfg.HookSecret == "" {
		http.Error(w, "webhooks are off: the service was started without a hook secret", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		http.Error(w, "the body is over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	if err := s.verify(r, flow, body); err != nil {
		s.log.Warn("webhook refused", "flow", flow, "error", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	queued, err := s.Trigger(r.Context(), flow, "webhook")
	var unknown *UnknownFlowError
	switch {
	case errors.As(err, &unknown):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.Info("webhook", "flow", flow, "queued", queued)
	writeJSON(w, http.StatusAccepted, map[string]any{"flow": flow, "queued": queued})
}

// verify checks the timestamp, the signature (in constant time) and that the signature was
// not used before.
func (s *Service) verify(r *http.Request, flow string, body []byte) error {
	ts := r.Header.Get(TimestampHeader)
	sent, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("missing or bad %s: send the Unix time in seconds", TimestampHeader)
	}
	now := s.cfg.Now()
	if age := now.Sub(time.Unix(sent, 0)); age > hookWindow || age < -hookWindow {
		return fmt.Errorf("%s is %s from now; a webhook must be signed within 5 minutes of sending", TimestampHeader, age.Round(time.Second))
	}
	hexSig, ok := strings.CutPrefix(r.Header.Get(SignatureHeader), "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil {
		return fmt.Errorf("missing or bad %s: send sha256= and the hex HMAC-SHA256 of \"<timestamp>.<flow>.<body>\"", SignatureHeader)
	}
	if !hmac.Equal(got, signature(s.cfg.HookSecret, ts, flow, body)) {
		return errors.New("wrong signature")
	}
	if !s.hooks.first(hexSig, now) {
		return errors.New("this signature was used already (a replay)")
	}
	return nil
}

// replayGuard remembers the signatures accepted within the window: a captured request
// cannot be sent again while its timestamp is still good.
type replayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newReplayGuard() *replayGuard { return &replayGuard{seen: map[string]time.Time{}} }

func (g *replayGuard) first(sig string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, at := range g.seen {
		if now.Sub(at) > 2*hookWindow {
			delete(g.seen, k)
		}
	}
	if _, ok := g.seen[sig]; ok {
		return false
	}
	g.seen[sig] = now
	return true
}
