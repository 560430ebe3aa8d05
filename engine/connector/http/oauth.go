package httpconn

// OAuth2 with golang.org/x/oauth2: the client-credentials grant, or the refresh-token grant.
// A provider that rotates refresh tokens answers each refresh with a new one and forgets the
// old: the new one is written to refresh_token_file (0600, through a temporary file renamed
// over it, synced) before its access token is used, so that a crash at any point leaves the
// file with a refresh token the provider still takes.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/config"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauthSettings are auth.oauth2's.
type oauthSettings struct {
	tokenURL, clientID, clientSecret string
	scopes                           []string
	refreshToken                     string // the first refresh token, "" for client credentials
	file                             string // where rotated refresh tokens are kept
}

func (r *reader) readOAuth(n *config.Node) {
	if n == nil || n.Kind != config.Map {
		return
	}
	o := &oauthSettings{}
	ok := true
	get := func(key string, secret bool) string {
		v := n.Get(key)
		if v == nil {
			return ""
		}
		s, fromEnv, vok := r.expand(v, "auth.oauth2."+key)
		if !vok {
			ok = false
			return ""
		}
		if secret && !strings.Contains(v.Value, "${") && s != "" {
			r.ds.Errorf(v.Range, "auth.oauth2.%s must come from the environment", key).
				WithDetail("Write it as ${NAME} and set the variable: a secret in the system file ends up in version control.")
			ok = false
			return ""
		}
		if secret || fromEnv && key != "token_url" {
			r.s.secrets = append(r.s.secrets, s)
		}
		return s
	}
	o.tokenURL = get("token_url", false)
	o.clientID = get("client_id", false)
	o.clientSecret = get("client_secret", true)
	o.refreshToken = get("refresh_token", true)
	o.file = get("refresh_token_file", false)
	if sc := n.Get("scopes"); sc != nil && sc.Kind == config.List {
		for _, item := range sc.Items {
			if s, isStr := str(item); isStr {
				o.scopes = append(o.scopes, s)
			}
		}
	}
	if !ok {
		return
	}
	if u, err := parseTokenURL(o.tokenURL); err != nil {
		r.ds.Errorf(n.Get("token_url").Range, "auth.oauth2.token_url: %s", err).
			WithDetail("Write the provider's token endpoint, like https://auth.example.com/oauth/token.")
		return
	} else {
		o.tokenURL = u
	}
	r.s.oauth = o
}

func parseTokenURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", s)
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		return "", fmt.Errorf("%q must start with https://", s)
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return "", fmt.Errorf("%q uses http:// for %s: use https://", s, u.Hostname())
	}
	return s, nil
}

// oauth gets and renews OAuth2 access tokens.
type oauth struct {
	s    *oauthSettings
	sys  string
	red  *redactor
	http *http.Client
	// persist writes a rotated refresh token; tests replace it to crash around it.
	persist func(path, token string) error

	mu      sync.Mutex
	tok     *oauth2.Token
	gen     uint64
	refresh string // the refresh token the provider takes now
}

func (o *oauth) current(ctx context.Context) (credential, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tok == nil || !o.tok.Valid() {
		if err := o.fetch(ctx); err != nil {
			return credential{}, err
		}
	}
	return o.credential(), nil
}

func (o *oauth) credential() credential {
	return credential{gen: o.gen, header: http.Header{"Authorization": {o.tok.Type() + " " + o.tok.AccessToken}}}
}

func (o *oauth) renew(ctx context.Context, gen uint64) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen != o.gen {
		return true, nil
	}
	if err := o.fetch(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// fetch gets a new access token: by client credentials, or by the refresh token, which is
// persisted first when the provider rotated it.
func (o *oauth) fetch(ctx context.Context) error {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.http)
	var tok *oauth2.Token
	var err error
	if o.s.refreshToken == "" && o.s.file == "" {
		cc := &clientcredentials.Config{ClientID: o.s.clientID, ClientSecret: o.s.clientSecret, TokenURL: o.s.tokenURL, Scopes: o.s.scopes}
		tok, err = cc.Token(ctx)
	} else {
		if o.refresh == "" {
			if o.refresh, err = o.firstRefreshToken(); err != nil {
				return err
			}
		}
		cfg := &oauth2.Config{ClientID: o.s.clientID, ClientSecret: o.s.clientSecret, Endpoint: oauth2.Endpoint{TokenURL: o.s.tokenURL}, Scopes: o.s.scopes}
		tok, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: o.refresh}).Token()
	}
	if err != nil {
		return o.tokenError(err)
	}
	o.red.add(tok.AccessToken, tok.RefreshToken)
	if tok.AccessToken == "" {
		return fmt.Errorf("%s: auth.oauth2: the token endpoint answered without an access_token", o.sys)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != o.refresh && (o.s.refreshToken != "" || o.s.file != "") {
		// Rotated: the old one is no longer valid. Keep the new one before using it.
		if o.s.file != "" {
			if err := o.persist(o.s.file, tok.RefreshToken); err != nil {
				return fmt.Errorf("%s: auth.oauth2: the provider rotated the refresh token and it cannot be saved to refresh_token_file %s: %w; the run stops rather than use a token it may lose", o.sys, o.s.file, err)
			}
		}
		o.refresh = tok.RefreshToken
	}
	o.tok = tok
	o.gen++
	return nil
}

// firstRefreshToken is the refresh token to start with: refresh_token_file's when it exists
// (the last one the provider gave), else the refresh_token setting.
func (o *oauth) firstRefreshToken() (string, error) {
	if o.s.file != "" {
		data, err := os.ReadFile(o.s.file)
		switch {
		case err == nil:
			if t := strings.TrimSpace(string(data)); t != "" {
				o.red.add(t)
				return t, nil
			}
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("%s: auth.oauth2: cannot read refresh_token_file: %w", o.sys, err)
		}
	}
	if o.s.refreshToken == "" {
		return "", fmt.Errorf("%s: auth.oauth2: refresh_token_file %s does not exist and refresh_token is not set; set refresh_token to the provider's refresh token", o.sys, o.s.file)
	}
	return o.s.refreshToken, nil
}

// tokenError words a failed token request.
func (o *oauth) tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if msg == "" && re.Response != nil {
			msg = statusText(re.Response.StatusCode)
		}
		if re.ErrorCode == "invalid_grant" && o.refresh != "" {
			return fmt.Errorf("%s: auth.oauth2: the provider refused the refresh token (%s): it was revoked or has expired; authorize again and set refresh_token (and remove %s)", o.sys, msg, o.fileName())
		}
		return fmt.Errorf("%s: auth.oauth2: the token endpoint refused the request (%s)", o.sys, msg)
	}
	return fmt.Errorf("%s: auth.oauth2: %w", o.sys, err)
}

func (o *oauth) fileName() string {
	if o.s.file == "" {
		return "refresh_token_file"
	}
	return o.s.file
}

// writeTokenFile writes token to path atomically: a 0600 temporary file in the same
// directory, synced, renamed over path, and the directory synced, so that path holds the old
// token or the new one, whole, whenever the process stops.
func writeTokenFile(path, token string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
