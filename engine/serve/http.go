package serve

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Names of the admin session cookie and the form field of the CSRF token.
const (
	sessionCookie = "dataflow_admin"
	csrfField     = "csrf"
)

//go:embed status.html
var statusHTML string

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.Local().Format(time.DateTime)
	},
	"at":      func(t time.Time) string { return t.Local().Format(time.DateTime) },
	"seconds": func(s float64) string { return fmt.Sprintf("%.2f s", s) },
}).Parse(statusHTML))

// Handler serves the status page, the metrics, the health checks, the admin actions and the
// webhooks.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg.reg, promhttp.HandlerOpts{Registry: s.reg.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	// Admin actions: a cross-origin request is refused before it is looked at (Sec-Fetch-Site,
	// else Origin against Host), and then the bearer token, or the session cookie with the
	// form's CSRF token, must be right.
	admin := http.NewServeMux()
	admin.HandleFunc("POST /login", s.login)
	admin.HandleFunc("POST /logout", s.logout)
	admin.HandleFunc("POST /flows/{flow}/run", s.authorized(s.runNow))
	admin.HandleFunc("POST /deadletters/retry", s.authorized(s.retry))
	admin.HandleFunc("POST /deadletters/drop", s.authorized(s.drop))
	guarded := http.NewCrossOriginProtection().Handler(admin)
	for _, pattern := range []string{"POST /login", "POST /logout", "POST /flows/{flow}/run", "POST /deadletters/retry", "POST /deadletters/drop"} {
		mux.Handle(pattern, guarded)
	}
	// Webhooks are signed, not cookie-authenticated: systems post them from anywhere.
	mux.HandleFunc("POST /hooks/{flow}", s.hook)
	return mux
}

func (s *Service) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var problems []string
	if _, err := s.store.Runs(ctx, 1); err != nil {
		problems = append(problems, "state: "+err.Error())
	}
	s.mu.Lock()
	if s.refused != "" {
		problems = append(problems, "mappings: the last reload was refused; the service runs the mappings it had:\n"+s.refused)
	}
	s.mu.Unlock()
	if len(problems) > 0 {
		http.Error(w, strings.Join(problems, "\n"), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Service) statusJSON(w http.ResponseWriter, r *http.Request) {
	st, err := s.Status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// pageData is the status page's template data.
type pageData struct {
	*Status
	Admin      bool   // the viewer holds the admin session
	AdminOff   bool   // the service has no admin token
	CSRF       string // the token the forms carry
	WrongToken bool
}

func (s *Service) page(w http.ResponseWriter, r *http.Request) {
	st, err := s.Status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	data := pageData{Status: st, AdminOff: s.cfg.AdminToken == "", Admin: s.hasSession(r), WrongToken: r.URL.Query().Get("login") == "wrong"}
	if data.Admin {
		data.CSRF = s.derived("csrf")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No framing (clickjacking of the buttons) and no scripts at all.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Cache-Control", "no-store")
	statusPage.Execute(w, data)
}

// derived is a value made from the admin token for one purpose: the session cookie and the
// CSRF token are not the token itself, and a new token invalidates both.
func (s *Service) derived(purpose string) string {
	m := hmac.New(sha256.New, []byte(s.cfg.AdminToken))
	m.Write([]byte("dataflow " + purpose))
	return hex.EncodeToString(m.Sum(nil))
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (s *Service) hasSession(r *http.Request) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	c, err := r.Cookie(sessionCookie)
	return err == nil && equal(c.Value, s.derived("session"))
}

// authorized lets a request through with the bearer token (API clients), or with the session
// cookie and the form's CSRF token (the status page).
func (s *Service) authorized(next func(http.ResponseWriter, *http.Request, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken == "" {
			http.Error(w, "admin actions are off: the service was started without an admin token", http.StatusForbidden)
			return
		}
		if h := r.Header.Get("Authorization"); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok || !equal(token, s.cfg.AdminToken) {
				http.Error(w, "wrong admin token", http.StatusUnauthorized)
				return
			}
			next(w, r, false)
			return
		}
		if !s.hasSession(r) {
			http.Error(w, "admin token required: send Authorization: Bearer <token>, or log in on the status page", http.StatusUnauthorized)
			return
		}
		if !equal(r.PostFormValue(csrfField), s.derived("csrf")) {
			http.Error(w, "missing or wrong CSRF token: reload the status page and try again", http.StatusForbidden)
			return
		}
		next(w, r, true)
	}
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AdminToken == "" {
		http.Error(w, "admin actions are off: the service was started without an admin token", http.StatusForbidden)
		return
	}
	if !equal(r.PostFormValue("token"), s.cfg.AdminToken) {
		http.Redirect(w, r, "/?login=wrong", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.derived("session"), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// done answers an admin action: the status page again for a form, JSON for an API client.
func done(w http.ResponseWriter, r *http.Request, form bool, body map[string]any) {
	if form {
		http.Redirect(w, r, "/#flow-"+fmt.Sprint(body["flow"]), http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Service) runNow(w http.ResponseWriter, r *http.Request, form bool) {
	s.queue1(w, r, form, r.PathValue("flow"), "admin")
}

// retry runs the flow now: a run retries every dead letter of its flow.
func (s *Service) retry(w http.ResponseWriter, r *http.Request, form bool) {
	s.queue1(w, r, form, r.PostFormValue("flow"), "retry")
}

func (s *Service) queue1(w http.ResponseWriter, r *http.Request, form bool, flow, trigger string) {
	queued, err := s.Trigger(r.Context(), flow, trigger)
	var unknown *UnknownFlowError
	switch {
	case errors.As(err, &unknown):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.Info("run queued", "flow", flow, "trigger", trigger, "queued", queued)
	done(w, r, form, map[string]any{"flow": flow, "queued": queued})
}

func (s *Service) drop(w http.ResponseWriter, r *http.Request, form bool) {
	flow, side, id := r.PostFormValue("flow"), r.PostFormValue("side"), r.PostFormValue("record")
	dead, err := s.store.DeadLetters(r.Context(), flow)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	found := false
	for _, d := range dead {
		found = found || (d.Side == side && d.RecordID == id)
	}
	if !found {
		http.Error(w, fmt.Sprintf("flow %q has no dead letter %s:%s", flow, side, id), http.StatusNotFound)
		return
	}
	tx, release, err := s.adminTx(r.Context(), flow)
	if err == nil {
		if err = tx.ClearDeadLetter(flow, side, id); err != nil {
			tx.Rollback()
		} else {
			err = tx.Commit()
		}
		release()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	s.log.Info("dead letter dropped", "flow", flow, "side", side, "record", id)
	done(w, r, form, map[string]any{"flow": flow, "dropped": side + ":" + id})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
