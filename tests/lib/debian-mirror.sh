# shellcheck shell=bash
# mirror_uri: the Debian archive URI the HOST's apt uses, read at run time from
# /etc/apt/sources.list.d/*.sources (deb822) or /etc/apt/sources.list (one-line), taking the
# first entry that is not a security suite. No registry host name is written anywhere.
mirror_uri() {
    local u
    u=$(awk 'BEGIN{RS="";FS="\n"}
        { uri=""; suites=""
          for (i=1;i<=NF;i++) { if ($i ~ /^URIs:/) {sub(/^URIs:[ \t]*/,"",$i); uri=$i}
                                if ($i ~ /^Suites:/) {sub(/^Suites:[ \t]*/,"",$i); suites=$i} }
          if (uri != "" && suites !~ /security/ && uri !~ /security/) { split(uri,a," "); print a[1]; exit } }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null)
    if [ -z "$u" ] && [ -f /etc/apt/sources.list ]; then
        u=$(awk '$1=="deb" && $0 !~ /security/ { for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit} }' /etc/apt/sources.list)
    fi
    [ -n "$u" ] || { echo "mirror_uri: no apt source found" >&2; return 1; }
    echo "${u%/}"
}
