from bottle import route, run


@route("/health")
def health():
    return "ok"


run(host="0.0.0.0", port=8080)
