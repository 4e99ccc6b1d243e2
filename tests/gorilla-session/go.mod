module lakests.test/gorilla-session

go 1.23

require github.com/gorilla/sessions v1.4.0

require github.com/gorilla/securecookie v1.1.2 // indirect
