package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/sign"
)

// checker adapts the sign package's verifier to the core's SignatureChecker.
type checker struct{ v *sign.Verifier }

func (c checker) CheckCommit(co *object.Commit) (string, string) {
	st, key := c.v.VerifyCommit(co)
	return string(st), key
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("audit", stderr)
	cfgPath := fs.String("config", "shipbot.yaml", "config file")
	env := fs.String("env", "", "only this environment")
	app := fs.String("app", "", "only this app")
	since := fs.String("since", "", "only changes at or after this date (2006-01-02 or RFC 3339)")
	format := fs.String("format", "table", "table, json or csv")
	dora := fs.Bool("dora", false, "instead of the records: per app and environment, deployment frequency, change failure rate (rollbacks per deploy) and time to restore, over --since (default: all history) until now")
	failOn := fs.String("fail-on", "", "exit 1 when a record carries one of these flags (comma-separated: "+strings.Join(gitops.AuditFlags, ", ")+")")
	if err := parse(fs, args); err != nil {
		return err
	}
	gate, err := failOnFlags(*failOn)
	if err != nil {
		return usageError{err}
	}
	var from time.Time
	if *since != "" {
		if from, err = parseDate(*since); err != nil {
			return usageError{err}
		}
	}
	switch *format {
	case "table", "json", "csv":
	default:
		return usageError{fmt.Errorf("--format %q: use table, json or csv", *format)}
	}
	m, err := NewMain(ctx, *cfgPath, slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), false)
	if err != nil {
		return err
	}
	defer m.Close()
	v, err := sign.NewVerifier(m.Config.Signing.TrustedOpenPGP, m.Config.Signing.TrustedAllowedSigners)
	if err != nil {
		return fmt.Errorf("trusted keys: %w", err)
	}
	records, err := m.Service.Audit(ctx, gitops.AuditOptions{Env: *env, App: *app, Since: from, Checker: checker{v}})
	if err != nil {
		return err
	}
	if *dora {
		return writeDORA(stdout, *format, gitops.ComputeDORA(records, from, time.Now()))
	}
	if err := writeAudit(stdout, *format, records); err != nil {
		return err
	}
	return gateAudit(stderr, gate, records)
}

// writeDORA writes the delivery figures as a table, JSON or CSV.
func writeDORA(w io.Writer, format string, rows []gitops.DORA) error {
	dur := func(d time.Duration, n int) string {
		if n == 0 {
			return "-"
		}
		return d.Round(time.Minute).String()
	}
	switch format {
	case "json":
		if rows == nil {
			rows = []gitops.DORA{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"app", "env", "days", "deploys", "deploys_per_day", "rollbacks", "change_failure_rate", "restores", "median_restore_s", "mean_restore_s"})
		for _, d := range rows {
			_ = cw.Write([]string{d.App, d.Env, fmt.Sprintf("%.1f", d.Days), fmt.Sprint(d.Deploys), fmt.Sprintf("%.2f", d.PerDay), fmt.Sprint(d.Rollbacks),
				fmt.Sprintf("%.3f", d.ChangeFailureRate), fmt.Sprint(d.Restores), fmt.Sprintf("%.0f", d.MedianRestore.Seconds()), fmt.Sprintf("%.0f", d.MeanRestore.Seconds())})
		}
		cw.Flush()
		return cw.Error()
	default:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "APP\tENV\tDEPLOYS\tPER DAY\tROLLBACKS\tCHANGE FAILURE RATE\tTIME TO RESTORE (MEDIAN)\t(MEAN)")
		for _, d := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%d\t%.0f%%\t%s\t%s\n", d.App, d.Env, d.Deploys, d.PerDay, d.Rollbacks, 100*d.ChangeFailureRate,
				dur(d.MedianRestore, d.Restores), dur(d.MeanRestore, d.Restores))
		}
		if len(rows) == 0 {
			fmt.Fprintln(tw, "(no deploys in the period)")
		}
		return tw.Flush()
	}
}

// failOnFlags reads --fail-on: flags an audit record can carry.
func failOnFlags(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(gitops.AuditFlags, f) {
			return nil, fmt.Errorf("--fail-on %q: not a flag; the flags are %s", f, strings.Join(gitops.AuditFlags, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// gateAudit fails the audit (exit status 1, after the records were
// written) when a record carries a flag of gate, and says which on stderr.
func gateAudit(stderr io.Writer, gate []string, records []gitops.AuditRecord) error {
	if len(gate) == 0 {
		return nil
	}
	count := map[string]int{}
	failed := 0
	for _, r := range records {
		hit := false
		for _, f := range r.Flags {
			if slices.Contains(gate, f) {
				count[f]++
				hit = true
			}
		}
		if hit {
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	var parts []string
	for _, f := range gate {
		if count[f] > 0 {
			parts = append(parts, fmt.Sprintf("%s (%d)", f, count[f]))
		}
	}
	fmt.Fprintf(stderr, "shipbot audit: %d record(s) carry a flag of --fail-on: %s\n", failed, strings.Join(parts, ", "))
	return exitCode(1)
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: write a date like 2026-11-01 or 2026-11-01T08:00:00Z", s)
}

var auditColumns = []string{"time", "commit", "action", "app", "env", "from", "to", "requested_by", "approved_by", "justification", "request_id", "via", "signature", "flags", "authorized_by", "break_glass"}

func auditRow(r gitops.AuditRecord) []string {
	return []string{
		r.Time.Format(time.RFC3339), r.Commit, r.Action, r.App, r.Env, r.From, r.To, r.RequestedBy,
		strings.Join(r.ApprovedBy, ";"), r.Justification, r.RequestID, r.Via, r.Signature, strings.Join(r.Flags, ";"),
		r.AuthorizedBy, r.BreakGlass, // columns are only ever added at the end
	}
}

func writeAudit(w io.Writer, format string, records []gitops.AuditRecord) error {
	switch format {
	case "json":
		if records == nil {
			records = []gitops.AuditRecord{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		// "bob <bob@x>" as written, not "bob \u003cbob@x\u003e": this is
		// read by people and by tools, never embedded in HTML.
		enc.SetEscapeHTML(false)
		return enc.Encode(records)
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(auditColumns); err != nil {
			return err
		}
		for _, r := range records {
			if err := cw.Write(auditRow(r)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	default:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tCOMMIT\tACTION\tAPP\tENV\tFROM -> TO\tREQUESTED BY\tSIGNATURE\tFLAGS\tWHY")
		for _, r := range records {
			flags := strings.Join(r.Flags, ",")
			if flags == "" {
				flags = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s -> %s\t%s\t%s\t%s\t%s\n", r.Time.Format("2006-01-02 15:04"), r.Commit[:10],
				r.Action, r.App, r.Env, r.From, r.To, r.RequestedBy, r.Signature, flags, gitops.OneLine(r.Justification))
		}
		return tw.Flush()
	}
}
