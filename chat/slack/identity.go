package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/shipbot/shipbot/gitops"
)

// Identity is who a Slack user is for shipbot: the policy subject and the
// git author, derived from the email of their Slack profile.
type Identity struct {
	UserID  string   // Slack user id, e.g. U024BE7LH
	Subject string   // policy subject, e.g. "alice"
	Email   string   // profile email, lower-case
	Name    string   // real name for the commit author (one line)
	Groups  []string // policy group names from Slack user groups, e.g. "slack:sre-oncall" (sorted)
	// GroupsUnknown: Slack could not be asked for the user groups just
	// now (Groups is empty); the policy refuses what a group's deny line
	// could have denied.
	GroupsUnknown bool
}

// DirectoryOptions configure how Slack users become policy subjects.
type DirectoryOptions struct {
	API API
	// TTL is how long users, channel names and group memberships are
	// cached (default 5m).
	TTL time.Duration
	// Subjects maps a lower-case email to a policy subject. An email not
	// listed becomes its lower-cased local part ("Alice@acme.example" ->
	// "alice").
	Subjects map[string]string
	// EmailDomains, when set, are the only email domains accepted
	// (lower-case, exact).
	EmailDomains []string
	// TeamID, when set, refuses users of other workspaces (Slack Connect).
	TeamID string
	// Groups maps Slack user group ids to policy group names. Nil: every
	// user group counts, named slack:HANDLE ("slack:sre-oncall"), so that
	// no Slack group can pass for a group of the policy's own g lines.
	// Empty (non-nil): groups are off.
	Groups map[string]string
	// MaxEntries bounds each cache (default 10000).
	MaxEntries int
	Now        func() time.Time
	Logger     *slog.Logger
}

// GroupPrefix starts the policy name of a Slack user group when no mapping
// is configured: the group with the handle @sre-oncall is the policy group
// "slack:sre-oncall".
const GroupPrefix = "slack:"

// Directory resolves Slack users to identities. It is also the core's
// gitops.Directory: the author of a commit is the requester as Slack
// knows them now, never a guess.
type Directory struct {
	o        DirectoryOptions
	users    *ttlCache[*slackgo.User]
	channels *ttlCache[string]
	groups   *ttlCache[map[string][]string] // one entry: user id -> group names

	mu       sync.Mutex
	subjects map[string]string // policy subject -> Slack user id that resolved to it
	groupsMu sync.Mutex        // one rebuild of the membership index at a time
	// groupsErr is the last failed rebuild, given again without asking
	// Slack until groupsRetry (guarded by groupsMu): a workspace without
	// user groups (free plans) or a missing scope must not cost two Slack
	// calls per request.
	groupsErr   error
	groupsRetry time.Time
}

var _ gitops.Directory = (*Directory)(nil)

// subjectRe is what a policy subject may look like (as local.ValidUser).
var subjectRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// groupNameRe is what a configured policy name of a Slack user group may
// look like: a group of the policy ("sre") or PLATFORM:NAME
// ("slack:release").
var groupNameRe = regexp.MustCompile(`^([A-Za-z0-9._-]{1,32}:)?[A-Za-z0-9._-]{1,64}$`)

// emailRe is a plain address: no spaces, no angle brackets, one '@'.
var emailRe = regexp.MustCompile(`^[^\s<>@",;]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$`)

// NewDirectory returns a Directory.
func NewDirectory(o DirectoryOptions) (*Directory, error) {
	if o.API == nil {
		return nil, errors.New("slack directory: no API")
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	subjects := make(map[string]string, len(o.Subjects))
	for email, subj := range o.Subjects {
		if !subjectRe.MatchString(subj) {
			return nil, fmt.Errorf("slack directory: subject %q for %s: use 1 to 64 letters, digits, '.', '_' or '-'", subj, email)
		}
		subjects[strings.ToLower(email)] = subj
	}
	o.Subjects = subjects
	for i, d := range o.EmailDomains {
		o.EmailDomains[i] = strings.ToLower(strings.TrimPrefix(d, "@"))
	}
	return &Directory{
		o:        o,
		users:    newTTLCache[*slackgo.User](o.TTL, o.MaxEntries, o.Now),
		channels: newTTLCache[string](o.TTL, o.MaxEntries, o.Now),
		groups:   newTTLCache[map[string][]string](o.TTL, 1, o.Now),
		subjects: map[string]string{},
	}, nil
}

// identityError is a refusal to identify someone, for the chat user.
func identityError(format string, args ...any) error {
	return gitops.Userf(format, args...)
}

// slackErrorCode returns Slack's error string ("user_not_found"), or "".
func slackErrorCode(err error) string {
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// user returns users.info for id, cached.
func (d *Directory) user(ctx context.Context, id string) (*slackgo.User, error) {
	if u, ok := d.users.Get(id); ok {
		return u, nil
	}
	u, err := d.o.API.GetUserInfoContext(ctx, id)
	if err != nil {
		return nil, err
	}
	d.users.Put(id, u)
	return u, nil
}

// Resolve identifies Slack user id. A *gitops.UserError says why someone
// can't be identified (no readable email, a guest, another workspace, ...);
// any other error means Slack could not be asked. Either way the caller
// must refuse the request: nobody is ever treated as someone else.
func (d *Directory) Resolve(ctx context.Context, userID string) (Identity, error) {
	id, err := d.lookup(ctx, userID)
	if err != nil {
		return Identity{}, err
	}
	if err := d.claim(ctx, id); err != nil {
		return Identity{}, err
	}
	groups, err := d.GroupsOf(ctx, userID)
	if err != nil {
		// Missing groups cost the rights they would grant, and could hide
		// a deny line: the request goes on marked, and the policy refuses
		// what a group's deny line could have denied.
		d.o.Logger.Warn("slack user groups unavailable", "user", userID, "err", err)
		id.GroupsUnknown = true
	}
	id.Groups = groups
	return id, nil
}

// lookup maps a user id to an identity without side effects.
func (d *Directory) lookup(ctx context.Context, userID string) (Identity, error) {
	if userID == "" {
		return Identity{}, identityError("shipbot can't tell who sent this (no Slack user id)")
	}
	u, err := d.user(ctx, userID)
	if err != nil {
		switch slackErrorCode(err) {
		case "user_not_found", "user_not_visible":
			return Identity{}, identityError("shipbot can't find your Slack user (%s), so it can't tell who you are", userID)
		}
		return Identity{}, fmt.Errorf("users.info %s: %w", userID, err)
	}
	return d.identity(u)
}

// identity applies the rules to a Slack user.
func (d *Directory) identity(u *slackgo.User) (Identity, error) {
	switch {
	case u.Deleted:
		return Identity{}, identityError("Slack user %s is deactivated", u.ID)
	case u.IsBot || u.IsAppUser || u.IsWorkflowBot:
		return Identity{}, identityError("bots and workflows can't ask shipbot for changes; a person has to")
	case u.IsRestricted || u.IsUltraRestricted || u.IsStranger:
		return Identity{}, identityError("you are a guest or external user of this workspace; shipbot only takes requests from full members")
	case d.o.TeamID != "" && u.TeamID != "" && u.TeamID != d.o.TeamID:
		return Identity{}, identityError("you belong to another Slack workspace; shipbot only takes requests from its own")
	}
	email := strings.ToLower(strings.TrimSpace(u.Profile.Email))
	if email == "" {
		return Identity{}, identityError("shipbot can't read the email of your Slack profile, and it only acts for people it can identify by email. " +
			"Ask a Slack admin to check that shipbot has the users:read.email scope and that your profile has an email")
	}
	if !emailRe.MatchString(email) {
		return Identity{}, identityError("the email of your Slack profile is not a plain address shipbot can use; ask a Slack admin")
	}
	local, domain, _ := strings.Cut(email, "@")
	if len(d.o.EmailDomains) > 0 && !slices.Contains(d.o.EmailDomains, domain) {
		return Identity{}, identityError("your Slack email is at %s; shipbot only takes requests from %s addresses", domain, strings.Join(d.o.EmailDomains, ", "))
	}
	subject, mapped := d.o.Subjects[email]
	if !mapped {
		subject = local
		if !subjectRe.MatchString(subject) {
			return Identity{}, identityError("your Slack email's name %q is not a valid policy subject; ask an admin to map %s to a subject (SHIPBOT_SLACK_SUBJECTS_FILE)", local, email)
		}
	}
	return Identity{UserID: u.ID, Subject: subject, Email: email, Name: authorName(u, subject)}, nil
}

// claim records that userID speaks for id.Subject. Two Slack users that
// map to the same subject (alice@acme.example and alice@other.example) are
// a configuration error: the second is refused while the first still
// resolves to that subject.
func (d *Directory) claim(ctx context.Context, id Identity) error {
	d.mu.Lock()
	owner, ok := d.subjects[id.Subject]
	d.mu.Unlock()
	if ok && owner != id.UserID {
		if prev, err := d.lookup(ctx, owner); err == nil && prev.Subject == id.Subject {
			return identityError("Slack users %s and %s both map to the policy subject %q; ask an admin to map their emails apart (SHIPBOT_SLACK_SUBJECTS_FILE or SHIPBOT_SLACK_EMAIL_DOMAINS)", owner, id.UserID, id.Subject)
		} else if err != nil && !isUserError(err) {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.subjects) >= max(d.o.MaxEntries, 10000) {
		clear(d.subjects)
	}
	d.subjects[id.Subject] = id.UserID
	return nil
}

func isUserError(err error) bool {
	var ue *gitops.UserError
	return errors.As(err, &ue)
}

// authorName is the git author name: the profile's real name on one line,
// without the characters that would break a git identity.
func authorName(u *slackgo.User, subject string) string {
	for _, n := range []string{u.Profile.RealName, u.RealName, u.Profile.DisplayName} {
		n = strings.Map(func(r rune) rune {
			if r == '<' || r == '>' {
				return -1
			}
			return r
		}, gitops.OneLine(n))
		if r := []rune(n); len(r) > 100 {
			n = string(r[:100])
		}
		if n = strings.TrimSpace(n); n != "" {
			return n
		}
	}
	return subject
}

// Person implements gitops.Directory: the author of a commit requested by
// subject. The subject must have come from a Slack user shipbot resolved,
// and that user must still map to it now.
func (d *Directory) Person(ctx context.Context, subject string) (gitops.Person, error) {
	d.mu.Lock()
	userID, ok := d.subjects[subject]
	d.mu.Unlock()
	if !ok {
		// Someone shipbot has not seen in Slack yet, e.g. an approver who
		// approved on GitHub: find the Slack user whose email maps to
		// subject, and accept them only if they resolve to it.
		id, err := d.bySubject(ctx, subject)
		if err != nil {
			return gitops.Person{}, err
		}
		return gitops.Person{Name: id.Name, Email: id.Email}, nil
	}
	id, err := d.lookup(ctx, userID)
	if err != nil {
		return gitops.Person{}, err
	}
	if id.Subject != subject {
		return gitops.Person{}, identityError("the Slack profile of %s changed since the request (now %q, was %q); send the request again", userID, id.Subject, subject)
	}
	return gitops.Person{Name: id.Name, Email: id.Email}, nil
}

// bySubject finds the Slack user of a policy subject through the emails
// that map to it (the subjects file, or subject@domain for each accepted
// email domain), checked the same way as any user: only a user who
// resolves to subject is accepted.
func (d *Directory) bySubject(ctx context.Context, subject string) (Identity, error) {
	var emails []string
	for email, subj := range d.o.Subjects {
		if subj == subject {
			emails = append(emails, email)
		}
	}
	slices.Sort(emails)
	if subjectRe.MatchString(subject) {
		for _, domain := range d.o.EmailDomains {
			emails = append(emails, strings.ToLower(subject)+"@"+domain)
		}
	}
	for _, email := range emails {
		u, err := d.o.API.GetUserByEmailContext(ctx, email)
		if err != nil {
			if slackErrorCode(err) == "users_not_found" || slackErrorCode(err) == "user_not_found" {
				continue
			}
			return Identity{}, fmt.Errorf("users.lookupByEmail: %w", err)
		}
		d.users.Put(u.ID, u)
		id, err := d.identity(u)
		if err != nil || id.Subject != subject {
			continue
		}
		if err := d.claim(ctx, id); err != nil {
			return Identity{}, err
		}
		return id, nil
	}
	return Identity{}, identityError("shipbot doesn't know which Slack user %q is; send the request again", subject)
}

// UserID returns the Slack user that last resolved to subject.
func (d *Directory) UserID(subject string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, ok := d.subjects[subject]
	return id, ok
}

// GroupsOf returns the policy groups of a Slack user from Slack user groups
// (usergroups.list, then usergroups.users.list per group), sorted. The
// membership index is rebuilt at most once per TTL, so a change in Slack
// reaches the policy within the TTL.
func (d *Directory) GroupsOf(ctx context.Context, userID string) ([]string, error) {
	if d.o.Groups != nil && len(d.o.Groups) == 0 {
		return nil, nil
	}
	if idx, ok := d.groups.Get(""); ok {
		return idx[userID], nil
	}
	d.groupsMu.Lock()
	defer d.groupsMu.Unlock()
	if idx, ok := d.groups.Get(""); ok {
		return idx[userID], nil
	}
	if d.groupsErr != nil && d.o.Now().Before(d.groupsRetry) {
		return nil, d.groupsErr
	}
	idx, err := d.groupIndex(ctx)
	if err != nil {
		if ctx.Err() == nil { // Slack's failure, not this request's end
			d.groupsErr, d.groupsRetry = err, d.o.Now().Add(min(d.o.TTL, time.Minute))
		}
		return nil, err
	}
	d.groupsErr = nil
	d.groups.Put("", idx)
	return idx[userID], nil
}

// groupIndex asks Slack for the members of each user group that counts:
// Slack user id -> policy group names, sorted.
func (d *Directory) groupIndex(ctx context.Context) (map[string][]string, error) {
	names := d.o.Groups
	if names == nil {
		all, err := d.o.API.GetUserGroupsContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("usergroups.list: %w", err)
		}
		names = map[string]string{}
		for _, g := range all {
			if g.Handle != "" && g.DateDelete == 0 {
				names[g.ID] = GroupPrefix + g.Handle
			}
		}
	}
	idx := map[string][]string{}
	for gid, name := range names {
		members, err := d.o.API.GetUserGroupMembersContext(ctx, gid)
		if err != nil {
			return nil, fmt.Errorf("usergroups.users.list %s: %w", gid, err)
		}
		for _, m := range members {
			idx[m] = append(idx[m], name)
		}
	}
	for _, g := range idx {
		slices.Sort(g)
	}
	return idx, nil
}

// ChannelName returns what the policy sees as the channel: "#name" for a
// channel or private channel, "dm" for a direct message, "group-dm" for a
// multi-person DM. A channel shipbot can't read is an error, never a
// guess: the policy may restrict actions to channels.
func (d *Directory) ChannelName(ctx context.Context, channelID string) (string, error) {
	if name, ok := d.channels.Get(channelID); ok {
		return name, nil
	}
	if strings.HasPrefix(channelID, "D") {
		// A direct message with shipbot: no lookup (it would need im:read).
		return "dm", nil
	}
	c, err := d.o.API.GetConversationInfoContext(ctx, &slackgo.GetConversationInfoInput{ChannelID: channelID})
	if err != nil {
		switch slackErrorCode(err) {
		case "channel_not_found", "missing_scope", "not_in_channel":
			return "", identityError("shipbot can't read the name of this channel (%s), which the policy needs; invite @shipbot to it", slackErrorCode(err))
		}
		return "", fmt.Errorf("conversations.info %s: %w", channelID, err)
	}
	var name string
	switch {
	case c.IsIM:
		name = "dm"
	case c.IsMpIM:
		name = "group-dm"
	case c.Name != "":
		name = "#" + c.Name
	default:
		return "", identityError("shipbot can't tell the name of this channel, which the policy needs")
	}
	d.channels.Put(channelID, name)
	return name, nil
}
