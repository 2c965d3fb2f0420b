# java: the headless JDK; the agent runs `javac -d . *.java` then `java -cp . Main`.
packages="default-jdk-headless"
in_all=yes
