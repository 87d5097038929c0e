package slack

import (
	"context"
	"fmt"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/shipbot/shipbot/gitops"
)

// FollowUnfinished follows again, after a restart or a failover, the
// changes shipbot landed whose rollout was being watched (Watcher): one
// message in each change's thread says so and is updated like the
// original, up to Synced and Healthy, Degraded (with its Rollback button)
// or the watch's end. It returns at once; the work is tracked like any
// other, so Shutdown waits for it.
func (a *Adapter) FollowUnfinished(list []gitops.Unfinished) int {
	w, ok := a.o.Core.(Watcher)
	if !ok || !w.Watches() {
		return 0
	}
	n := 0
	for _, u := range list {
		ref, err := parseThread(u.Thread)
		if err != nil {
			a.log.Warn("a change in flight names no thread shipbot can post in", "request", u.Plan.Request.ID, "err", err)
			continue
		}
		u := u
		n++
		a.work.Go(func() {
			ctx, cancel := context.WithTimeout(a.base, a.o.WorkTimeout)
			defer cancel()
			log := a.log.With("request", u.Plan.Request.ID, "commit", u.Commit)
			head := fmt.Sprintf("[%s] %s: commit %s landed %s ago; shipbot restarted while following it, and follows it again.",
				u.Plan.Request.ID, u.Plan.Summary, shortHash(u.Commit), a.o.Now().Sub(u.When).Round(time.Second))
			in := inbound{kind: "mention", channel: ref.channel, ts: ref.ts, threadTS: ref.threadTS()}
			msg, err := a.post(ctx, in, textMessage(head))
			if err != nil {
				log.Error("the thread of a change in flight can't be posted in", "err", err)
				return
			}
			log.Info("following a change in flight again")
			a.watch(ctx, log, msg, u.Plan, w, gitops.Response{Outcome: gitops.OutcomeCommitted, Commit: u.Commit, Text: head},
				func(icon, text string) message { return textMessageWithIcon(icon, text) })
		})
	}
	return n
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// textMessageWithIcon is a plain-text report led by a Slack emoji code.
func textMessageWithIcon(icon, text string) message {
	m := textMessage(text)
	m.blocks = append([]slackgo.Block{contextBlock(icon)}, m.blocks...)
	return m
}
