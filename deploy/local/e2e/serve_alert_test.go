//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAlertToRollbackHealthy runs cmd/shipbot's alert-to-recovery path
// against this stack's Argo CD and pods: `shipbot serve` (with a fake
// Slack) gets an Alertmanager alert for checkout in prod naming its
// PagerDuty incident, posts one message with what changed and a Rollback;
// pressed and confirmed, the rollback lands, pins, and is reported Synced
// and Healthy; a promotion into prod is refused until unpin.
func TestAlertToRollbackHealthy(t *testing.T) {
	if *cmdTests == "" {
		t.Skip("-cmd-tests not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := filepath.Join(demo.Dir, "shipbot-serve.yaml")
	if err := demo.WriteConfigTo(cfg, "cache-serve", st, "3m", true); err != nil {
		t.Fatal(err)
	}
	out, err := runCmdTests(ctx, "^TestServeAlertToHealthy$", "SHIPBOT_TEST_SERVE_CONFIG="+cfg, "SHIPBOT_TEST_SERVE_REPO="+demo.Repo)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestServeAlertToHealthy") {
		t.Fatalf("alert -> rollback -> Healthy: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		for _, what := range []string{"alert -> incident message:", "Rollback confirmed from the incident -> Synced and Healthy:"} {
			if i := strings.Index(l, what); i >= 0 {
				result("shipbot serve, Alertmanager alert on checkout prod: %s", strings.TrimSpace(l[i:]))
			}
		}
	}
}
