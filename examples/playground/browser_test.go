package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/examples/images/hello"
	"github.com/dockerrun/dockerrun/internal/protocol"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// screenshot is the README's picture of the page, written by TestBrowser
// when DOCKERRUN_UPDATE_SCREENSHOT=1.
const screenshot = "../../docs/playground.png"

// browserTimeLimit is the playground's execution time limit in the browser
// test: short, so that the test of the limit is quick.
const browserTimeLimit = 3 * time.Second

// TestBrowser drives the page in headless Chromium against a playground
// whose runner uses the real engine and the language images: it picks a
// language, types, runs with the keyboard and the mouse, and reads what a
// person would read.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	docker := testenv.Docker(t)
	testenv.LanguageImages(t, "python", "bash", "c")
	hellos, err := hello.All()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	langs, err := discover(ctx, docker, testenv.ImagePrefix(), hellos)
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, l := range langs {
		images = append(images, l.Image)
	}
	owner := fmt.Sprintf("playground-test-%d", time.Now().UnixNano()%1e9)
	r, err := dockerrun.New(
		dockerrun.WithDockerClient(docker),
		dockerrun.WithOwner(owner),
		dockerrun.WithAllowedImages(images...),
		dockerrun.WithWarmPool(map[string]int{testenv.Image("python"): 1}),
		dockerrun.WithMaxExecutionTime(browserTimeLimit),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		testenv.WaitNoContainers(t, dockerrun.LabelOwner, owner, 30*time.Second)
	})
	if err := r.Ping(ctx); err != nil { // starts filling the warm pool, as main does
		t.Fatal(err)
	}
	h, err := newHandler(config{Run: runner(r), Languages: langs, TimeLimit: r.MaxExecutionTime()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	p := openPage(t, bin, srv.URL)
	for _, want := range []string{"python", "bash", "c"} {
		if !strings.Contains(p.eval(t, `[...document.querySelectorAll("#language option")].map(o => o.value).join(" ")`), want) {
			t.Fatalf("the language picker has no %s", want)
		}
	}

	t.Run("python with stdin, Ctrl+Enter", func(t *testing.T) {
		p.pick(t, "python")
		p.setValue(t, "code", "")
		p.do(t, chromedp.SendKeys(chromedp.ID("code"), "import sys\nprint('sum', sum(int(x) for x in sys.stdin.read().split()))\n"),
			chromedp.SendKeys(chromedp.ID("stdin-1"), "1 2 3 4"),
			chromedp.Focus(chromedp.ID("code")))
		p.run(t, chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
		if got := p.text(t, "#streams .stdout pre"); got != "sum 10\n" {
			t.Errorf("stdout shows %q, want %q", got, "sum 10\n")
		}
		if got := p.text(t, "#status"); got != "The program ran." {
			t.Errorf("status %q, want %q", got, "The program ran.")
		}
		if got := p.text(t, "#facts"); !strings.Contains(got, "duration") || !strings.Contains(got, "CPU time") || !strings.Contains(got, "memory") {
			t.Errorf("facts %q show no duration, CPU time or memory", got)
		}
		if os.Getenv("DOCKERRUN_UPDATE_SCREENSHOT") == "1" {
			// The page without its footer, which gives the test's time limit.
			png, err := chromedp.Run(p.ctx, chromedp.Screenshot(chromedp.ID("playground")))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(screenshot, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", screenshot)
		}
	})

	t.Run("bash hello world as filled in, Run button", func(t *testing.T) {
		p.pick(t, "bash")
		if got := p.value(t, "code"); !strings.Contains(got, "Hello World!") {
			t.Fatalf("the editor holds %q, not bash's hello world", got)
		}
		p.setValue(t, "stdin-1", "")
		p.run(t, chromedp.Click(chromedp.ID("run")))
		if got := p.text(t, "#streams .stdout pre"); got != "Hello World!\n" {
			t.Errorf("stdout shows %q, want %q", got, "Hello World!\n")
		}
	})

	t.Run("c compile error", func(t *testing.T) {
		p.pick(t, "c")
		if got := p.text(t, "#filename"); got != "main.c" {
			t.Errorf("file name %q, want main.c", got)
		}
		p.setValue(t, "code", "int main(void) { return undeclared_thing; }\n")
		p.run(t, chromedp.Click(chromedp.ID("run")))
		out := p.text(t, "#streams")
		if !strings.Contains(out, "undeclared_thing") || !strings.Contains(out, "undeclared") {
			t.Errorf("the answer does not show the compiler's message:\n%s", out)
		}
		if got := p.text(t, "#status"); got != "The program failed." {
			t.Errorf("status %q, want %q", got, "The program failed.")
		}
	})

	t.Run("c with three test cases", func(t *testing.T) {
		p.pick(t, "c")
		p.setValue(t, "code", "#include <stdio.h>\nint main(void) { int n; if (scanf(\"%d\", &n) != 1) return 2; printf(\"%d\\n\", n * n); return 0; }\n")
		p.setValue(t, "stdin-1", "3")
		p.do(t, chromedp.Click(chromedp.ID("add-case")), chromedp.SendKeys(chromedp.ID("stdin-2"), "4"),
			chromedp.Click(chromedp.ID("add-case")), chromedp.SendKeys(chromedp.ID("stdin-3"), "x"))
		p.run(t, chromedp.Click(chromedp.ID("run")))
		if got, want := p.text(t, "#status"), "2 of 3 test cases ran without an error."; got != want {
			t.Errorf("status %q, want %q", got, want)
		}
		rows := p.eval(t, `[...document.querySelectorAll("#runs tbody tr")].map(r => [...r.cells].slice(0, 5).map(c => c.textContent).join("|")).join("\n")`)
		if want := "1|3|9\n||\n2|4|16\n||\n3|x|||Exit code: 2"; rows != want {
			t.Errorf("the test case table reads\n%s\nwant\n%s", rows, want)
		}
		if got := p.eval(t, `[...document.querySelectorAll("#runs tbody tr td:last-child")].map(c => c.textContent).join(" ")`); !strings.Contains(got, "iB") {
			t.Errorf("the memory column reads %q", got)
		}
		// Back to one stdin box for the next tests.
		p.do(t, chromedp.Click(chromedp.CSS(".case .remove")), chromedp.Click(chromedp.CSS(".case .remove")))
		if got := p.eval(t, `String(document.querySelectorAll(".stdin").length)`); got != "1" {
			t.Fatalf("%s stdin boxes after removing two", got)
		}
	})

	t.Run("time limit", func(t *testing.T) {
		p.pick(t, "python")
		p.setValue(t, "code", "while True:\n    pass\n")
		start := time.Now()
		p.run(t, chromedp.Click(chromedp.ID("run")))
		// Our images' agent stops the program at the limit and answers
		// within the runner's grace, so the page shows the agent's error line
		// (the runner's limits.execution_time is the next test's).
		if took := time.Since(start); took < browserTimeLimit-time.Second {
			t.Errorf("the answer came after %v, well before the time limit of %v", took, browserTimeLimit)
		}
		if got, want := p.text(t, "#status"), "Your program ran longer than the time limit and was stopped."; got != want {
			t.Errorf("status %q, want %q", got, want)
		}
		if got := p.text(t, "#streams .error pre"); !strings.HasPrefix(got, protocol.ErrorTimeLimit) {
			t.Errorf("the error line %q is not the agent's report of the time limit", got)
		}
	})

	t.Run("keyboard: Tab indents, Esc then Tab leaves the editor", func(t *testing.T) {
		p.setValue(t, "code", "")
		p.do(t, chromedp.Focus(chromedp.ID("code")), chromedp.KeyEvent("\t"))
		if got := p.value(t, "code"); got != "    " {
			t.Errorf("Tab in the editor typed %q, want four spaces", got)
		}
		p.do(t, chromedp.KeyEvent("\x1b"), chromedp.KeyEvent("\t"))
		if got := p.eval(t, `document.activeElement.id`); got != "stdin-1" {
			t.Errorf("Esc, Tab moved the focus to %q, want stdin-1", got)
		}
	})

	t.Run("phone width", func(t *testing.T) {
		p.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
		defer p.do(t, chromedp.EmulateViewport(1280, 860))
		if got := p.eval(t, `String(document.documentElement.scrollWidth <= innerWidth)`); got != "true" {
			t.Errorf("the page scrolls sideways at 390 px: scrollWidth %s", p.eval(t, `String(document.documentElement.scrollWidth)`))
		}
		for _, id := range []string{"language", "run", "code", "stdin-1", "add-case"} {
			if got := p.eval(t, `(() => { const r = document.getElementById("`+id+`").getBoundingClientRect(); return String(r.left >= 0 && r.right <= innerWidth && r.width > 0) })()`); got != "true" {
				t.Errorf("#%s is not within the 390 px viewport", id)
			}
		}
	})

	t.Run("runner errors as sentences", func(t *testing.T) {
		fake := p.openFake(t, langs)
		for _, tt := range []struct {
			err  *dockerrun.Error
			want string
		}{
			{&dockerrun.Error{Code: dockerrun.CodeBusy, Message: "all 8 places are taken: try again later"}, "Every runner is busy right now. Try again in a few seconds."},
			{&dockerrun.Error{Code: dockerrun.CodeContainerCreate, Message: "create container from image"}, "The image for this language is missing on the Docker daemon. Build it with examples/images/build.sh and restart the playground."},
			{&dockerrun.Error{Code: dockerrun.CodeExecutionTime, Message: "the run took longer than 3s and was killed"}, "Your program ran longer than the time limit and was stopped."},
			{&dockerrun.Error{Code: dockerrun.CodeMemory, Message: "the container exceeded its memory limit"}, "Your program used more memory than the limit allows and was stopped."},
		} {
			fake.set(nil, tt.err)
			p.run(t, chromedp.Click(chromedp.ID("run")))
			if got := p.text(t, "#problem-title"); got != tt.want {
				t.Errorf("%s: the page says %q, want %q", tt.err.Code, got, tt.want)
			}
			if got, want := p.text(t, "#problem-detail"), tt.err.Message+" ("+string(tt.err.Code)+")"; got != want {
				t.Errorf("%s: detail %q, want %q", tt.err.Code, got, want)
			}
		}
	})

	t.Run("usage and test cases", func(t *testing.T) {
		// The page against a fake runner that answers as dockerrun's agent
		// does for a request with runs: the build's output at the top, one
		// entry per test case, each with its usage.
		fake := p.openFake(t, langs)
		fake.set(&dockerrun.Result{Raw: json.RawMessage(`{"stdout":"","stderr":"","error":"","duration":2000000,` +
			`"usage":{"cpu_time":1500000,"memory":3145728},"runs":[` +
			`{"stdout":"2\n","stderr":"","error":"","duration":1000000,"usage":{"cpu_time":500000,"memory":1048576}},` +
			`{"stdout":"","stderr":"boom\n","error":"Exit code: 1","duration":1000000,"usage":{"cpu_time":600000,"memory":2097152}}]}`)}, nil)
		p.pick(t, "c")
		p.setValue(t, "stdin-1", "1")
		p.do(t, chromedp.Click(chromedp.ID("add-case")), chromedp.SendKeys(chromedp.ID("stdin-2"), "x"))
		if got := p.eval(t, `document.activeElement.id`); got != "stdin-2" {
			t.Errorf("after Add a test case the focus is on %q, want stdin-2", got)
		}
		p.run(t, chromedp.Click(chromedp.ID("run")))
		var sent struct {
			Language string
			Stdin    *string
			Runs     []struct{ Stdin string }
		}
		fake.mu.Lock()
		err = json.Unmarshal([]byte(fake.payload), &sent)
		fake.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if sent.Language != "c" || sent.Stdin != nil || len(sent.Runs) != 2 || sent.Runs[0].Stdin != "1" || sent.Runs[1].Stdin != "x" {
			t.Errorf("the page sent %+v, want language c and runs 1, x without stdin", sent)
		}
		if got, want := p.text(t, "#status"), "1 of 2 test cases ran without an error."; got != want {
			t.Errorf("status %q, want %q", got, want)
		}
		if got := p.text(t, "#facts"); !strings.Contains(got, "1.5 ms") || !strings.Contains(got, "3.0 MiB") {
			t.Errorf("facts %q show neither the CPU time 1.5 ms nor the memory 3.0 MiB", got)
		}
		rows := p.eval(t, `[...document.querySelectorAll("#runs tbody tr")].map(r => [...r.cells].map(c => c.textContent).join("|")).join("\n")`)
		want := "1|1|2\n|||1.0 ms|500 µs|1.0 MiB\n2|x||boom\n|Exit code: 1|1.0 ms|600 µs|2.0 MiB"
		if rows != want {
			t.Errorf("the test case table reads\n%s\nwant\n%s", rows, want)
		}
	})

	p.noExceptions(t)
}

// TestScreenshot checks that the README shows the page's screenshot and
// that the file is a real one (TestBrowser writes it).
func TestScreenshot(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("(docs/playground.png)")) {
		t.Error("README.md does not show docs/playground.png")
	}
	data, err := os.ReadFile(screenshot)
	if err != nil {
		t.Fatalf("%v: run DOCKERRUN_UPDATE_SCREENSHOT=1 go test -run TestBrowser ./examples/playground", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", screenshot, err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 500 {
		t.Errorf("%s is %dx%d, want a page-sized picture", screenshot, b.Dx(), b.Dy())
	}
}

// chromium returns the path of the browser, or skips the test without one
// (fails it under CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium under CI=true: .ci/setup-browser.sh installs it")
	}
	t.Skip("no chromium: apt-get install chromium (or run .ci/setup-browser.sh)")
	return ""
}

// page is a tab of a headless Chromium on the playground.
type page struct {
	ctx     context.Context
	answers int

	mu         sync.Mutex
	exceptions []string
}

// openPage starts a browser with a fresh profile and opens url in it. The
// browser stops when the test ends.
func openPage(t *testing.T, bin, url string) *page {
	t.Helper()
	var output bytes.Buffer
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.CombinedOutput(&output),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium's output:\n%s", output.String())
		}
	})
	p := &page{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v\n%s", bin, err, output.String())
	}
	if err := chromedp.Listen(ctx, p.listen); err != nil {
		t.Fatal(err)
	}
	p.do(t, chromedp.EmulateViewport(1280, 860))
	p.open(t, url)
	return p
}

// open loads the page from url.
func (p *page) open(t *testing.T, url string) {
	t.Helper()
	p.do(t, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("code")))
	p.answers = 0
}

// openFake loads the page from a playground, offering langs, whose runs a
// fake runner answers; it stops when the test ends.
func (p *page) openFake(t *testing.T, langs []language) *fakeRunner {
	t.Helper()
	fake := &fakeRunner{}
	h, err := newHandler(config{Run: fake.Run, Languages: langs, TimeLimit: browserTimeLimit})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p.open(t, srv.URL)
	return fake
}

// listen keeps the page's uncaught exceptions.
func (p *page) listen(ev any) {
	if e, ok := ev.(*runtime.EventExceptionThrown); ok {
		p.mu.Lock()
		defer p.mu.Unlock()
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		p.exceptions = append(p.exceptions, msg)
	}
}

func (p *page) noExceptions(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.exceptions {
		t.Errorf("the page threw: %s", e)
	}
}

// do runs actions with a bound on their time.
func (p *page) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// get runs an action that reads a string, with a bound on its time.
func (p *page) get(t *testing.T, what string, action chromedp.Action[string]) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return s
}

// eval returns the string that expression evaluates to.
func (p *page) eval(t *testing.T, expression string) string {
	t.Helper()
	return p.get(t, expression, chromedp.Evaluate[string](expression))
}

// text returns the text that a person sees in the first element that
// matches the CSS selector sel.
func (p *page) text(t *testing.T, sel string) string {
	t.Helper()
	return p.get(t, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// value returns the value of the form element with the id.
func (p *page) value(t *testing.T, id string) string {
	t.Helper()
	return p.get(t, "value of #"+id, chromedp.Value(chromedp.ID(id)))
}

// setValue sets the value of the element with the id as typing would: the
// page hears an input event.
func (p *page) setValue(t *testing.T, id, value string) {
	t.Helper()
	js, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	p.do(t, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const e = document.getElementById(%q); e.value = %s; e.dispatchEvent(new Event("input")) })()`, id, js)))
}

// pick chooses a language in the picker, as a person would: the page
// hears a change event.
func (p *page) pick(t *testing.T, language string) {
	t.Helper()
	p.do(t, chromedp.SetValue(chromedp.ID("language"), language),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("language").dispatchEvent(new Event("change"))`))
	if got := p.value(t, "language"); got != language {
		t.Fatalf("the picker shows %q after picking %q", got, language)
	}
}

// run triggers a run and waits until the page shows its answer.
func (p *page) run(t *testing.T, trigger chromedp.Action[chromedp.Void]) {
	t.Helper()
	p.answers++
	p.do(t, trigger, chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`document.getElementById("answer").dataset.answers === "%d"`, p.answers),
		chromedp.WithPollingTimeout(browserTimeLimit+30*time.Second)))
}
