package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serve tells a bot token Slack refuses from Slack failing or not being
// reached: only the first is "refused the bot token" (issue 14 item 10).
func TestServeAuthErrors(t *testing.T) {
	cfg, _ := serveDemo(t)
	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc
		want, not string
	}{
		{"token refused", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
		}, "slack refused the bot token (auth.test: invalid_auth); check SHIPBOT_SLACK_BOT_TOKEN_FILE", ""},
		{"slack failing", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
		}, "failed (auth.test: HTTP 503); the bot token was not checked", "refused the bot token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			serveEnv(t, "socket", srv.URL+"/api/")
			t.Setenv("SHIPBOT_LISTEN", serveFreeAddr(t))
			log := &serveLog{}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := runServe(ctx, []string{"--config", cfg}, io.Discard, log)
			if err == nil || !strings.Contains(err.Error(), tc.want) || tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("runServe: %v\nwant it to contain %q (and not %q)", err, tc.want, tc.not)
			}
			serveNoSecrets(t, log.String())
		})
	}
}
