# Sourced by the set-up scripts: the one way they install Debian packages.
# apt_install_missing PKG...: installs those of PKG not installed yet (with sudo unless
# root), idempotently; sets APT_INSTALLED to what it installed.
apt_install_missing() {
  local pkg sudo=""
  APT_INSTALLED=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || APT_INSTALLED+=("$pkg")
  done
  ((${#APT_INSTALLED[@]})) || return 0
  echo "==> apt-get install ${APT_INSTALLED[*]}"
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${APT_INSTALLED[@]}" >/dev/null
}
