package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// repoRoot is the accessbot repository, two levels up from deploy/test.
const repoRoot = "../.."

// parsedDockerfile is the top-level Dockerfile as BuildKit reads it.
type parsedDockerfile struct {
	text     string
	result   *parser.Result
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
}

func parseDockerfile(t testing.TB) parsedDockerfile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatalf("the top-level Dockerfile: %v", err)
	}
	res, err := parser.Parse(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	return parsedDockerfile{text: string(raw), result: res, stages: stages, metaArgs: metaArgs}
}

func (d parsedDockerfile) stage(t testing.TB, name string) instructions.Stage {
	t.Helper()
	for _, s := range d.stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("Dockerfile has no stage named %q", name)
	return instructions.Stage{}
}

func commandsOf[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

var digestPinned = regexp.MustCompile(`^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$`)

// goModVersion is the `go` line of the bot's go.mod.
func goModVersion(t testing.TB) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

func TestDockerfileRules(t *testing.T) {
	d := parseDockerfile(t)
	if len(d.result.Warnings) > 0 {
		for _, w := range d.result.Warnings {
			t.Errorf("Dockerfile parser warning: %s", w.Short)
		}
	}
	if len(d.metaArgs) > 0 {
		t.Errorf("ARG before the first FROM (%d): the base images must be written out, pinned", len(d.metaArgs))
	}
	if len(d.stages) != 2 {
		t.Fatalf("want two stages (build, final), got %d", len(d.stages))
	}

	// Every base image pinned by digest, with a comment on how to update them.
	for _, s := range d.stages {
		if !digestPinned.MatchString(s.BaseName) {
			t.Errorf("stage %q: base %q is not pinned as name:tag@sha256:<digest>", s.Name, s.BaseName)
		}
	}
	for _, line := range strings.Split(d.text, "\n") {
		// A syntax directive makes BuildKit pull a frontend image: pinned too, or none.
		if l := strings.ToLower(strings.ReplaceAll(line, " ", "")); strings.HasPrefix(l, "#syntax=") && !strings.Contains(l, "@sha256:") {
			t.Errorf("Dockerfile: %q pulls an unpinned frontend image", line)
		}
	}
	if !strings.Contains(d.text, "# Base images are pinned by digest") ||
		!strings.Contains(d.text, "imagetools inspect") {
		t.Error("the Dockerfile must say in a comment how to update the pinned digests")
	}

	// The build stage: Go of go.mod's version; the one build script; version stamped.
	build := d.stages[0]
	if build.Name != "build" {
		t.Errorf("first stage is %q, want build", build.Name)
	}
	wantGo := "golang:" + goModVersion(t) + "-"
	if !strings.HasPrefix(build.BaseName, wantGo) {
		t.Errorf("build stage base %q, want %s... (the go line of go.mod)", build.BaseName, wantGo)
	}
	var declared []string
	for _, a := range commandsOf[*instructions.ArgCommand](build) {
		for _, kv := range a.Args {
			declared = append(declared, kv.Key)
		}
	}
	for _, k := range []string{"VERSION", "COMMIT", "DATE"} {
		if !slices.Contains(declared, k) {
			t.Errorf("build stage declares no ARG %s (stamped in by deploy/build.sh)", k)
		}
	}
	runs := commandsOf[*instructions.RunCommand](build)
	buildRun := buildCommand(t, build)
	if !buildRun.PrependShell || !strings.HasPrefix(buildRun.CmdLine[0], "./deploy/build.sh ") {
		t.Errorf("the binary must be built by ./deploy/build.sh (the command make build runs), got %q", buildRun.CmdLine)
	}
	if runs[len(runs)-1] != buildRun {
		t.Error("deploy/build.sh must be the build stage's last RUN")
	}
	script, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CGO_ENABLED=0 go build -trimpath",
		`-ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date"`,
		"version=${VERSION:-", "commit=${COMMIT:-", "date=${DATE:-",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("deploy/build.sh lacks %q", want)
		}
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^build:.*\n\t\S*deploy/build\.sh`).Match(mk) {
		t.Error("make build must run deploy/build.sh, the Dockerfile's build command")
	}

	// The final stage: distroless static, non-root numeric user, no shell.
	final := d.stages[len(d.stages)-1]
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static-debian12:nonroot@") {
		t.Errorf("final stage base %q, want gcr.io/distroless/static-debian12:nonroot@sha256:...", final.BaseName)
	}
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != build.Name {
				t.Errorf("final stage copies from %q: only the build stage's binary belongs there", c.From)
			}
		case *instructions.UserCommand, *instructions.ExposeCommand, *instructions.EntrypointCommand,
			*instructions.CmdCommand, *instructions.LabelCommand:
		default:
			t.Errorf("final stage: %s is not expected (no RUN, SHELL or shell-form commands: there is no shell)", c.Name())
		}
	}
	users := commandsOf[*instructions.UserCommand](final)
	if len(users) != 1 {
		t.Fatalf("final stage needs exactly one USER, has %d", len(users))
	}
	uid, gid, _ := strings.Cut(users[0].User, ":")
	for _, id := range []string{uid, gid} {
		n, err := strconv.Atoi(id)
		if err != nil || n == 0 {
			t.Errorf("USER %q: uid and gid must be numeric and not 0 (runAsNonRoot verifies a number)", users[0].User)
		}
	}
	if uid != "65532" {
		t.Errorf("USER %q: want 65532, distroless's nonroot", users[0].User)
	}
	eps := commandsOf[*instructions.EntrypointCommand](final)
	if len(eps) != 1 || eps[0].PrependShell || !slices.Equal(eps[0].CmdLine, []string{"/accessbot"}) {
		t.Errorf(`want exactly ENTRYPOINT ["/accessbot"] in exec form, got %+v`, eps)
	}
	cmds := commandsOf[*instructions.CmdCommand](final)
	wantCmd := []string{"run", "--config", "/etc/accessbot/accessbot.yaml"}
	if len(cmds) != 1 || cmds[0].PrependShell || !slices.Equal(cmds[0].CmdLine, wantCmd) {
		t.Errorf("want exactly CMD %q in exec form, got %+v", wantCmd, cmds)
	}
	exposes := commandsOf[*instructions.ExposeCommand](final)
	if len(exposes) != 1 || !slices.Equal(exposes[0].Ports, []string{"9090"}) {
		t.Errorf("want EXPOSE 9090 (metrics.listen: /metrics, /healthz, /readyz), got %+v", exposes)
	}
	copies := commandsOf[*instructions.CopyCommand](final)
	if len(copies) != 1 || !slices.Equal(copies[0].SourcePaths, []string{"/src/accessbot"}) || copies[0].DestPath != "/accessbot" {
		t.Errorf("want COPY --from=build /src/accessbot /accessbot, got %+v", copies)
	}
}

// buildCommand is the build stage's RUN that runs deploy/build.sh.
func buildCommand(t testing.TB, build instructions.Stage) *instructions.RunCommand {
	t.Helper()
	for _, r := range commandsOf[*instructions.RunCommand](build) {
		if len(r.CmdLine) > 0 && strings.Contains(r.CmdLine[0], "deploy/build.sh") {
			return r
		}
	}
	t.Fatal("the build stage has no RUN of deploy/build.sh")
	return nil
}

// TestDockerignore: the build context leaves out git, CI, local databases and
// binaries, and keeps what the build stage needs.
func TestDockerignore(t *testing.T) {
	pm := dockerignore(t)
	for _, p := range []string{".git", ".git/config", ".ci/run", "accessbot", "accessbot.db", "store/bolt/x.db", "deploy/test/go.mod"} {
		if ok, err := pm.MatchesOrParentMatches(p); err != nil || !ok {
			t.Errorf(".dockerignore keeps %s in the build context (err %v)", p, err)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "main.go", "deploy/build.sh", "store/redis/store.go", "access/service.go"} {
		if ok, err := pm.MatchesOrParentMatches(p); err != nil || ok {
			t.Errorf(".dockerignore leaves %s out of the build context (err %v)", p, err)
		}
	}
}

// dockerignore reads .dockerignore with BuildKit's reader and matcher.
func dockerignore(t testing.TB) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	return pm
}
