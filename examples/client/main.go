// Command client is an HTTP client of the docker-run API: it posts a run
// request with the access token and prints the answer, or the error code
// the server gave.
//
// Against a running server:
//
//	DOCKERRUN_URL=http://127.0.0.1:8088 DOCKERRUN_TOKEN=secret go run ./examples/client
//
// Without DOCKERRUN_URL it starts the API in-process on a loopback port
// (which needs a Docker daemon and dockerrun/python:latest, see
// examples/images/build.sh) and talks to that.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/httpapi"
)

// runRequest is the body of POST /run. The payload and the limits use the
// library's types, which marshal to the documented JSON.
type runRequest struct {
	Image   string            `json:"image"`
	Payload any               `json:"payload"`
	Limits  *dockerrun.Limits `json:"limits,omitempty"`
}

// apiError is the body of every error answer.
type apiError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func main() {
	url, token := os.Getenv("DOCKERRUN_URL"), os.Getenv("DOCKERRUN_TOKEN")
	if url == "" {
		var stop func()
		url, token, stop = startLocal()
		defer stop()
	}
	client := &http.Client{Timeout: 30 * time.Second}

	res, err := run(client, url, token, runRequest{
		Image: "dockerrun/python:latest",
		Payload: dockerrun.Request{
			Language: "python",
			Stdin:    "Ada\n",
			Files:    []dockerrun.File{{Name: "main.py", Content: "name = input()\nprint(f'Hello, {name}!')"}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stdout: %q\nerror:  %q\nagent duration: %v\n", res.Stdout, res.Error, res.Duration)

	// Test cases in one container, under a lower time limit than the
	// server's; each case reports its own outcome and usage.
	res, err = run(client, url, token, runRequest{
		Image: "dockerrun/python:latest",
		Payload: dockerrun.Request{
			Language: "python",
			Files:    []dockerrun.File{{Name: "main.py", Content: "n = int(input())\nprint(n * n)"}},
			Runs:     []dockerrun.RunInput{{Stdin: "3"}, {Stdin: "x"}, {Stdin: "12"}},
		},
		Limits: &dockerrun.Limits{ExecutionTime: 5 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
	for i, c := range res.Runs {
		fmt.Printf("case %d: stdout %q, error %q, %d KiB peak\n", i, c.Stdout, c.Error, c.Usage.Memory>>10)
	}

	// Errors carry a stable code to match on.
	_, err = run(client, url, token, runRequest{Image: "docker.io/library/python:3", Payload: map[string]any{}})
	fmt.Println("an image with a registry host is refused:", err)
}

// run posts one run request and decodes the answer.
func run(client *http.Client, url, token string, req runRequest) (*dockerrun.Answer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequest(http.MethodPost, url+"/run", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("X-Access-Token", token)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("POST /run: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return nil, fmt.Errorf("POST /run: status %d", resp.StatusCode)
		}
		return nil, fmt.Errorf("status %d, code %s: %s", resp.StatusCode, e.Code, e.Message)
	}
	var res dockerrun.Answer
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	return &res, nil
}

// startLocal serves the API in-process on a loopback port.
func startLocal() (url, token string, stop func()) {
	r, err := dockerrun.New()
	if err != nil {
		log.Fatal(err)
	}
	token = "example-token"
	h, err := httpapi.New(httpapi.Config{Runner: r, AccessToken: token})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), token, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		r.Close(ctx)
	}
}
