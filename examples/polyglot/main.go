// Command polyglot runs the same task — read numbers from stdin and print
// their sum — in Python, Bash and C side by side, each in its own
// container, at the same time, and prints a comparison.
//
//	examples/images/build.sh python bash c   # once
//	go run ./examples/polyglot
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dockerrun/dockerrun"
)

type program struct {
	language, file, code string
}

var programs = []program{
	{"python", "main.py", "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"},
	{"bash", "main.sh", "sum=0\nfor n in $(cat); do sum=$((sum + n)); done\necho $sum\n"},
	{"c", "main.c", "#include <stdio.h>\nint main(void) { long n, s = 0; while (scanf(\"%ld\", &n) == 1) s += n; printf(\"%ld\\n\", s); return 0; }\n"},
}

func main() {
	r, err := dockerrun.New(dockerrun.WithMaxExecutionTime(10 * time.Second))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	defer r.Close(ctx)

	stdin := "1 2 3 4 5 6 7 8 9 10\n"
	type outcome struct {
		out  string
		took time.Duration
		err  error
	}
	results := make([]outcome, len(programs))
	var wg sync.WaitGroup
	for i, p := range programs {
		wg.Go(func() {
			start := time.Now()
			res, err := r.Run(ctx, "dockerrun/"+p.language+":latest", map[string]any{
				"language": p.language,
				"stdin":    stdin,
				"files":    []map[string]string{{"name": p.file, "content": p.code}},
			})
			o := outcome{took: time.Since(start), err: err}
			if err == nil {
				o.out = strings.TrimSpace(res.Stdout)
				if res.Error != "" {
					o.err = fmt.Errorf("program failed: %s", res.Error)
				}
			}
			results[i] = o
		})
	}
	wg.Wait()

	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "language\tanswer\twall time")
	failed := false
	for i, p := range programs {
		o := results[i]
		if o.err != nil {
			failed = true
			fmt.Fprintf(w, "%s\terror: %v\t%v\n", p.language, o.err, o.took.Round(time.Millisecond))
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%v\n", p.language, o.out, o.took.Round(time.Millisecond))
	}
	w.Flush()
	if failed {
		os.Exit(1)
	}
}
