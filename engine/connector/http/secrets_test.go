package httpconn

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// echo answers with status and a body that repeats the request's credential header values after pad
// bytes of padding (so that a secret straddles the 500-byte cut of server messages, or the
// 60-byte start of a body shown for bad JSON): as JSON {"message": ...} or as plain text.
func echo(code, pad int, asJSON bool) fault {
	return func(a *api, w http.ResponseWriter, r *http.Request) {
		var lines []string
		for _, k := range []string{"Authorization", "X-Api-Key", "X-Tenant"} {
			if v := r.Header.Get(k); v != "" {
				lines = append(lines, v)
			}
		}
		text := strings.Repeat("x", pad) + strings.Join(lines, "; ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if asJSON {
			json.NewEncoder(w).Encode(map[string]any{"message": text})
		} else {
			io.WriteString(w, text)
		}
	}
}

// TestSecretsNeverInErrors: bearer tokens, basic passwords, auth header values and headers from
// ${VAR}s never appear in an error, not even a part of one, when the server echoes them in JSON
// messages, in text, in garbage where JSON was expected, cut at the message bound or not.
func TestSecretsNeverInErrors(t *testing.T) {
	const (
		bearer = `Tok"en/CANARY+bearer&<1>`
		pass   = `pa:ss\CANARY-basic-2`
		key    = `key%CANARY?header=3`
		tenant = `tenant CANARY-extra-4`
	)
	basic := base64.StdEncoding.EncodeToString([]byte("svc-user:" + pass))
	for _, tc := range []struct {
		name, auth string
		secrets    []string
	}{
		{"bearer", `auth: {bearer: "${SECRET}"}`, []string{bearer}},
		{"basic", `auth: {basic: {username: svc-user, password: "${SECRET}"}}`, []string{pass, basic}},
		{"header", `auth: {header: {name: X-Api-Key, value: "${SECRET}"}}`, []string{key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := map[string]string{"bearer": bearer, "basic": pass, "header": key}[tc.name]
			secrets := append(tc.secrets, tenant)
			a := newAPI(t, 2)
			src := strings.Replace(system(a.srv.URL, "headers: {X-Tenant: \"${TENANT}\", User-Agent: dataflow-test}\n", itemEntity), `auth: {bearer: "${TOKEN}"}`, tc.auth, 1)
			c, _ := openConn(t, src, map[string]string{"SECRET": secret, "TENANT": tenant})
			var errs []error
			scan := func() {
				_, err := scanAll(t, c, "")
				errs = append(errs, err)
			}
			const cut = 490 // a secret straddles the 500-byte cut of messages
			a.inject("GET /items", echo(401, cut, true))
			scan()
			a.inject("GET /items", echo(500, cut, false), echo(502, cut, true), echo(503, cut-20, false))
			scan()
			a.inject("GET /items", echo(200, 50, false)) // not JSON: the message shows 60 bytes
			scan()
			a.inject("POST /items", echo(422, cut, true), echo(400, 0, false))
			res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "A"}, {"sku": "B"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				errs = append(errs, r.Err)
			}
			a.inject("GET /items/1", echo(403, 0, false))
			_, err = c.Get(ctx, "Item", []string{"1"})
			errs = append(errs, err)
			a.inject("PATCH /items/1", echo(200, 0, false))
			_, err = c.Update(ctx, "Item", []connector.Record{{ID: "1", Data: map[string]any{"name": "x"}}})
			errs = append(errs, err)

			for i, err := range errs {
				if err == nil {
					t.Errorf("case %d: no error", i)
					continue
				}
				msg := err.Error()
				if !strings.Contains(msg, "***") {
					t.Errorf("case %d: nothing redacted in %q", i, msg)
				}
				for _, s := range secrets {
					if part := leaked(msg, s); part != "" {
						t.Errorf("case %d: %q of a secret in %s", i, part, msg)
					}
				}
			}
			// The secrets did reach the server.
			h := a.requests("GET /items")[0].header
			if h.Get("X-Tenant") != tenant || h.Get("User-Agent") != "dataflow-test" {
				t.Errorf("headers %v", h)
			}
		})
	}
}

// leaked returns a part of secret (8 bytes or more) that msg holds, or "".
func leaked(msg, secret string) string {
	const n = 8
	for i := 0; i+n <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+n]) {
			return secret[i : i+n]
		}
	}
	return ""
}

// TestUnsetSecretRefusesToRun: validation accepts an unset secret; a run refuses it, naming the
// variable, before any request.
func TestUnsetSecretRefusesToRun(t *testing.T) {
	a := newAPI(t, 0)
	sys := loadSystem(t, system(a.srv.URL, "", itemEntity), map[string]string{})
	if ds := (Driver{}).CheckEntity(sys.Entities[0], nil); len(ds) != 0 {
		t.Errorf("validation: %v", ds)
	}
	_, err := Driver{}.Open(ctx, sys, nil, connector.OpenOptions{})
	var se *connector.SettingError
	if !errors.As(err, &se) || se.Key != "auth" || err.Error() != "auth.bearer needs the environment variable TOKEN, which is not set" {
		t.Errorf("error %v", err)
	}
	if len(a.requests("*")) != 0 {
		t.Error("requests were sent")
	}
}
