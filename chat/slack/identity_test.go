package slack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/shipbot/shipbot/gitops"
)

func newDir(t *testing.T, fs *fakeSlack, mod func(*DirectoryOptions)) *Directory {
	t.Helper()
	o := DirectoryOptions{API: fs.client(), TeamID: "T1"}
	if mod != nil {
		mod(&o)
	}
	d, err := NewDirectory(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func user(id, email string, mod func(*slackgo.User)) slackgo.User {
	u := slackgo.User{ID: id, TeamID: "T1", RealName: "Some One"}
	u.Profile.Email = email
	u.Profile.RealName = "Some One"
	if mod != nil {
		mod(&u)
	}
	return u
}

func TestResolve(t *testing.T) {
	fs := newFakeSlack(t)
	fs.setUser(user("UCAP", "Carol.Dev@ACME.example", nil))
	fs.setUser(user("UPLUS", "dave+ops@acme.example", nil))
	fs.setUser(user("UDEL", "erin@acme.example", func(u *slackgo.User) { u.Deleted = true }))
	fs.setUser(user("UBOTX", "bot@acme.example", func(u *slackgo.User) { u.IsBot = true }))
	fs.setUser(user("UGUEST", "gus@acme.example", func(u *slackgo.User) { u.IsRestricted = true }))
	fs.setUser(user("UEXT", "xavier@partner.example", func(u *slackgo.User) { u.TeamID = "T2" }))
	fs.setUser(user("UEVIL", "alice@evil.example", nil))
	fs.setUser(user("UNAME", "nina@acme.example", func(u *slackgo.User) { u.Profile.RealName = "Nina <nina@evil>\nInjected: x" }))
	fs.setUser(user("UMAP", "frank.o'neil@acme.example", nil))

	d := newDir(t, fs, func(o *DirectoryOptions) {
		o.Subjects = map[string]string{"Frank.O'Neil@acme.example": "frank"}
	})
	ctx := context.Background()
	for _, tc := range []struct {
		user, subject, email, name, err string
	}{
		{user: "UALICE", subject: "alice", email: "alice@acme.example", name: "Alice Smith"},
		{user: "UCAP", subject: "carol.dev", email: "carol.dev@acme.example"},
		{user: "UMAP", subject: "frank", email: "frank.o'neil@acme.example"},
		{user: "UNAME", subject: "nina", name: "Nina nina@evil Injected: x"},
		{user: "UNOEMAIL", err: "can't read the email of your Slack profile"},
		{user: "UPLUS", err: `"dave+ops" is not a valid policy subject`},
		{user: "UDEL", err: "deactivated"},
		{user: "UBOTX", err: "bots and workflows"},
		{user: "UGUEST", err: "guest or external"},
		{user: "UEXT", err: "another Slack workspace"},
		{user: "UNOBODY", err: "can't find your Slack user"},
		{user: "", err: "no Slack user id"},
		// alice@evil.example maps to "alice", which UALICE already is.
		{user: "UEVIL", err: "both map to the policy subject \"alice\""},
	} {
		id, err := d.Resolve(ctx, tc.user)
		if tc.err != "" {
			var ue *gitops.UserError
			if !errors.As(err, &ue) || !strings.Contains(ue.Message, tc.err) {
				t.Errorf("%s: err %v, want a user error with %q", tc.user, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.user, err)
			continue
		}
		if id.Subject != tc.subject || (tc.email != "" && id.Email != tc.email) || (tc.name != "" && id.Name != tc.name) {
			t.Errorf("%s: got %+v", tc.user, id)
		}
	}

	// Restricting email domains refuses other domains outright.
	d2 := newDir(t, fs, func(o *DirectoryOptions) { o.EmailDomains = []string{"acme.example"} })
	if _, err := d2.Resolve(ctx, "UEVIL"); err == nil || !strings.Contains(err.Error(), "only takes requests from acme.example") {
		t.Errorf("evil domain: %v", err)
	}
}

func TestPerson(t *testing.T) {
	fs := newFakeSlack(t)
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	d := newDir(t, fs, func(o *DirectoryOptions) { o.Now = clk.Now; o.TTL = time.Minute })
	ctx := context.Background()
	if _, err := d.Person(ctx, "alice"); err == nil {
		t.Fatal("Person of a subject no Slack user resolved to")
	}
	if _, err := d.Resolve(ctx, "UALICE"); err != nil {
		t.Fatal(err)
	}
	p, err := d.Person(ctx, "alice")
	if err != nil || p != (gitops.Person{Name: "Alice Smith", Email: "alice@acme.example"}) {
		t.Fatalf("Person = %+v, %v", p, err)
	}
	if n := fs.callCount("users.info"); n != 1 {
		t.Errorf("users.info called %d times, want 1 (cached)", n)
	}
	// Her email changes: after the cache expires, the old subject is not
	// hers any more, and nobody else is used in her place.
	fs.addUser("UALICE", "alice.new@acme.example", "Alice Smith")
	clk.Add(2 * time.Minute)
	if _, err := d.Person(ctx, "alice"); err == nil || !strings.Contains(err.Error(), "changed since the request") {
		t.Fatalf("after the email changed: %v", err)
	}
	if fs.callCount("users.info") != 2 {
		t.Errorf("the cache did not expire")
	}
}

// An approver who approved on GitHub was never seen in Slack: Person finds
// them by the email their subject maps to, and only accepts a user who
// resolves to that subject.
func TestPersonOfSomeoneNotSeenYet(t *testing.T) {
	fs := newFakeSlack(t)
	d := newDir(t, fs, func(o *DirectoryOptions) {
		o.EmailDomains = []string{"acme.example"}
		o.Subjects = map[string]string{"robert.jones@acme.example": "rob"}
	})
	fs.addUser("UROB", "robert.jones@acme.example", "Robert Jones")
	ctx := context.Background()
	p, err := d.Person(ctx, "bob")
	if err != nil || p != (gitops.Person{Name: "Bob Jones", Email: "bob@acme.example"}) {
		t.Fatalf("Person(bob) = %+v, %v", p, err)
	}
	if p, err := d.Person(ctx, "rob"); err != nil || p.Email != "robert.jones@acme.example" {
		t.Fatalf("Person(rob) through the subjects file = %+v, %v", p, err)
	}
	// robert.jones@ maps to rob, so the local part "robert.jones" is nobody.
	if _, err := d.Person(ctx, "robert.jones"); err == nil {
		t.Error("a subject the subjects file maps elsewhere was accepted")
	}
	if _, err := d.Person(ctx, "nobody"); err == nil || !strings.Contains(err.Error(), "doesn't know which Slack user") {
		t.Errorf("Person(nobody) = %v", err)
	}
	if id, ok := d.UserID("bob"); !ok || id != "UBOB" {
		t.Errorf("bob was not remembered as UBOB: %q %v", id, ok)
	}
}

func TestGroupsAndChannels(t *testing.T) {
	fs := newFakeSlack(t)
	fs.mu.Lock()
	fs.handles = map[string]string{"S1": "team-checkout", "S2": "sre"}
	fs.groups = map[string][]string{"S1": {"UALICE", "UBOB"}, "S2": {"UBOB"}}
	fs.mu.Unlock()
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	d := newDir(t, fs, func(o *DirectoryOptions) { o.Now = clk.Now; o.TTL = time.Minute })
	ctx := context.Background()
	// Every user group, named slack:HANDLE: a Slack group called "sre"
	// can't pass for the policy's own group sre.
	id, err := d.Resolve(ctx, "UBOB")
	if err != nil || strings.Join(id.Groups, ",") != "slack:sre,slack:team-checkout" {
		t.Fatalf("bob: %+v %v", id, err)
	}
	if g, _ := d.GroupsOf(ctx, "UALICE"); strings.Join(g, ",") != "slack:team-checkout" {
		t.Errorf("alice's groups %v", g)
	}
	if fs.callCount("usergroups.list") != 1 || fs.callCount("usergroups.users.list") != 2 {
		t.Errorf("group lookups not cached: %d lists, %d member lists", fs.callCount("usergroups.list"), fs.callCount("usergroups.users.list"))
	}
	// Bob leaves @sre: the policy sees it once the cache expires.
	fs.mu.Lock()
	fs.groups["S2"] = nil
	fs.mu.Unlock()
	if g, _ := d.GroupsOf(ctx, "UBOB"); strings.Join(g, ",") != "slack:sre,slack:team-checkout" {
		t.Errorf("within the TTL bob's groups changed: %v", g)
	}
	clk.Add(2 * time.Minute)
	if g, _ := d.GroupsOf(ctx, "UBOB"); strings.Join(g, ",") != "slack:team-checkout" {
		t.Errorf("after the TTL bob's groups are %v, want slack:team-checkout", g)
	}
	fs.mu.Lock()
	fs.groups["S2"] = []string{"UBOB"}
	fs.mu.Unlock()

	// Configured groups: only those, under the policy's names; no list call.
	d2 := newDir(t, fs, func(o *DirectoryOptions) { o.Groups = map[string]string{"S2": "oncall", "S1": "slack:checkout"} })
	if g, err := d2.GroupsOf(ctx, "UBOB"); err != nil || strings.Join(g, ",") != "oncall,slack:checkout" {
		t.Errorf("configured groups: %v %v", g, err)
	}
	// Groups off.
	d3 := newDir(t, fs, func(o *DirectoryOptions) { o.Groups = map[string]string{} })
	if g, _ := d3.GroupsOf(ctx, "UBOB"); g != nil {
		t.Errorf("groups off: %v", g)
	}

	for ch, want := range map[string]string{"COPS": "#ops", "DALICE": "dm"} {
		if got, err := d.ChannelName(ctx, ch); err != nil || got != want {
			t.Errorf("channel %s: %q %v, want %q", ch, got, err, want)
		}
	}
	if _, err := d.ChannelName(ctx, "CSECRET"); err == nil || !strings.Contains(err.Error(), "invite @shipbot") {
		t.Errorf("unknown channel: %v", err)
	}
	before := fs.callCount("conversations.info")
	d.ChannelName(ctx, "COPS")
	if fs.callCount("conversations.info") != before {
		t.Error("channel names are not cached")
	}
}

// Slack can't list the user groups (a free workspace answers
// paid_teams_only): the identity says its groups are unknown, so the policy
// can fail closed on group deny lines; the failure is remembered for a
// minute instead of costing a Slack call per request.
func TestGroupsUnknown(t *testing.T) {
	fs := newFakeSlack(t)
	fs.mu.Lock()
	fs.groupsErr = "paid_teams_only"
	fs.mu.Unlock()
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	d := newDir(t, fs, func(o *DirectoryOptions) { o.Now = clk.Now })
	ctx := context.Background()
	id, err := d.Resolve(ctx, "UALICE")
	if err != nil || !id.GroupsUnknown || id.Groups != nil || id.Subject != "alice" {
		t.Fatalf("Resolve = %+v, %v; want alice with her groups unknown", id, err)
	}
	if id, _ := d.Resolve(ctx, "UBOB"); !id.GroupsUnknown {
		t.Error("bob's groups are known though Slack failed")
	}
	if n := fs.callCount("usergroups.list"); n != 1 {
		t.Errorf("usergroups.list called %d times within the minute, want 1", n)
	}
	fs.mu.Lock()
	fs.groupsErr = ""
	fs.handles = map[string]string{"S1": "sre"}
	fs.groups = map[string][]string{"S1": {"UALICE"}}
	fs.mu.Unlock()
	clk.Add(2 * time.Minute)
	id, err = d.Resolve(ctx, "UALICE")
	if err != nil || id.GroupsUnknown || strings.Join(id.Groups, ",") != "slack:sre" {
		t.Fatalf("after Slack recovered: %+v, %v", id, err)
	}
}
