// Command gorilla-session encodes and decodes lakeFS's web-UI session cookie with the real
// gorilla/sessions and gorilla/securecookie, at the versions lakeFS v1.84.0 pins, exactly as
// lakeFS's server does (pkg/api/serve.go: sessions.NewCookieStore(secret); the value "token").
// lakests' tests run it to prove its own codec against the real one, in both directions.
//
//	gorilla-session encode SECRET TOKEN     prints the Set-Cookie header CookieStore.Save writes
//	gorilla-session decode SECRET COOKIE    prints the token CookieStore.Get reads, or fails
//
// Arguments may instead come from the environment (GS_SECRET, GS_TOKEN, GS_COOKIE) so that no
// secret appears in a process listing.
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/gorilla/sessions"
)

const cookieName = "internal_auth_session"

func arg(i int, env string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	if len(os.Args) > i {
		return os.Args[i]
	}
	fmt.Fprintf(os.Stderr, "missing argument %d (or %s)\n", i, env)
	os.Exit(2)
	return ""
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gorilla-session encode|decode ...")
		os.Exit(2)
	}
	store := sessions.NewCookieStore([]byte(arg(2, "GS_SECRET")))
	switch os.Args[1] {
	case "encode":
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		session, err := store.Get(r, cookieName)
		if err != nil {
			fmt.Fprintln(os.Stderr, "get:", err)
			os.Exit(1)
		}
		session.Values["token"] = arg(3, "GS_TOKEN")
		w := httptest.NewRecorder()
		if err := session.Save(r, w); err != nil {
			fmt.Fprintln(os.Stderr, "save:", err)
			os.Exit(1)
		}
		fmt.Println(w.Header().Get("Set-Cookie"))
	case "decode":
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: cookieName, Value: arg(3, "GS_COOKIE")})
		session, err := store.Get(r, cookieName)
		if err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
		token, ok := session.Values["token"].(string)
		if !ok || token == "" {
			fmt.Fprintln(os.Stderr, "decode: no token in the session")
			os.Exit(1)
		}
		fmt.Println(token)
	default:
		fmt.Fprintln(os.Stderr, "usage: gorilla-session encode|decode ...")
		os.Exit(2)
	}
}
