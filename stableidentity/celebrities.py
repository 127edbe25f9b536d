"""Celebrity names for StableIdentity's editability prior.

Each name is exactly two words ("First Last"), and each word is ONE token of the CLIP BPE
vocabulary shared by both SDXL tokenizers (CLIP lowercases, so "Hanks" is the token ``hanks</w>``).
:mod:`stableidentity.adain` takes the mean and standard deviation of these tokens' embedding rows,
per position (first name, last name), as the range the learned identity words must live in.

Two lists, chosen by ``train.celebrity_names`` in ``configs/*.yaml``:

- :data:`OFFICIAL_CELEBRITIES` (``official``, the default): the 326 names of the official code's
  ``datasets_face/selected_celeb_names.txt`` (qinghew/StableIdentity, MIT licence), in its order.
  The official code takes tokens 1 and 2 of each tokenised name; every one of these names is two
  words of one token each, so that is exactly the (first name, last name) rows taken here.
- :data:`CELEBRITIES` (``extended``): this project's earlier list of 477 names (actors,
  musicians, athletes, public figures and artists of several eras; 119 shared with the official
  list), kept as a switch for identities trained before the change.

The test suite checks the two-single-token rule for both lists with the real CLIP tokenizer.
"""

from __future__ import annotations

CELEBRITIES: tuple[str, ...] = (
    "Tom Hanks", "Tom Cruise", "Brad Pitt", "Will Smith", "Johnny Depp", "Leonardo DiCaprio",
    "Morgan Freeman", "Matt Damon", "Ben Affleck", "George Clooney", "Denzel Washington",
    "Meryl Streep", "Julia Roberts", "Angelina Jolie", "Emma Watson", "Emma Stone",
    "Jennifer Lawrence", "Jennifer Aniston", "Jennifer Lopez", "Scarlett Johansson",
    "Natalie Portman", "Anne Hathaway", "Nicole Kidman", "Cate Blanchett", "Sandra Bullock",
    "Reese Witherspoon", "Halle Berry", "Keanu Reeves", "Hugh Jackman", "Chris Evans",
    "Chris Pratt", "Chris Hemsworth", "Ryan Reynolds", "Ryan Gosling", "Daniel Craig",
    "Daniel Radcliffe", "Tom Hardy", "Tom Holland", "Christian Bale", "Mark Wahlberg",
    "Owen Wilson", "Will Ferrell", "Jack Black", "Jack Nicholson", "Harrison Ford", "Bruce Willis",
    "Sylvester Stallone", "Arnold Schwarzenegger", "Vin Diesel", "Dwayne Johnson", "Kevin Hart",
    "Eddie Murphy", "Chris Rock", "Jamie Foxx", "Idris Elba", "Michael Caine", "Anthony Hopkins",
    "Patrick Stewart", "Gary Oldman", "Colin Firth", "Hugh Grant", "Ewan McGregor", "Russell Crowe",
    "Mel Gibson", "Kevin Bacon", "Paul Rudd", "Paul Newman", "James Dean", "Marilyn Monroe",
    "Audrey Hepburn", "Grace Kelly", "Elizabeth Taylor", "Sophia Loren", "Clint Eastwood",
    "John Wayne", "Charlie Chaplin", "Frank Sinatra", "Elvis Presley", "Michael Jackson",
    "Taylor Swift", "Katy Perry", "Lady Gaga", "Selena Gomez", "Justin Bieber", "Ariana Grande",
    "Miley Cyrus", "Britney Spears", "Justin Timberlake", "Bruno Mars", "Ed Sheeran",
    "Shawn Mendes", "Harry Styles", "John Lennon", "Paul McCartney", "Ringo Starr",
    "George Harrison", "Mick Jagger", "David Bowie", "Freddie Mercury", "Elton John", "Bob Dylan",
    "Bob Marley", "Kurt Cobain", "Jimi Hendrix", "Stevie Wonder", "Whitney Houston", "Mariah Carey",
    "Celine Dion", "Beyonce Knowles", "Alicia Keys", "Nicki Minaj", "Kanye West", "Snoop Dogg",
    "Post Malone", "Travis Scott", "Kendrick Lamar", "John Legend", "Pharrell Williams",
    "Chris Brown", "Michael Jordan", "Kobe Bryant", "LeBron James", "Stephen Curry", "Kevin Durant",
    "Magic Johnson", "Larry Bird", "Tiger Woods", "Serena Williams", "Venus Williams",
    "Roger Federer", "Rafael Nadal", "Novak Djokovic", "Andy Murray", "Maria Sharapova",
    "David Beckham", "Cristiano Ronaldo", "Lionel Messi", "Wayne Rooney", "Harry Kane",
    "Mohamed Salah", "Tom Brady", "Peyton Manning", "Aaron Rodgers", "Michael Phelps",
    "Muhammad Ali", "Mike Tyson", "Floyd Mayweather", "Conor McGregor", "Barack Obama",
    "Michelle Obama", "Donald Trump", "Joe Biden", "Hillary Clinton", "Bill Clinton",
    "Abraham Lincoln", "Winston Churchill", "Nelson Mandela", "Bill Gates", "Steve Jobs",
    "Elon Musk", "Jeff Bezos", "Mark Zuckerberg", "Warren Buffett", "Jimmy Fallon", "Jimmy Kimmel",
    "David Letterman", "Jay Leno", "Stephen Colbert", "Trevor Noah", "John Oliver", "Jon Stewart",
    "Kim Kardashian", "Kylie Jenner", "Kendall Jenner", "Paris Hilton", "Gigi Hadid", "Bella Hadid",
    "Kate Moss", "Naomi Campbell", "Adriana Lima", "Miranda Kerr", "Margot Robbie",
    "Zendaya Coleman", "Julia Stiles", "Amy Adams", "Amy Schumer", "Tina Fey", "Kristen Stewart",
    "Kristen Bell", "Robert Pattinson", "Zac Efron", "Hilary Duff", "Jessica Alba",
    "Jessica Simpson", "Megan Fox", "Demi Moore", "Bruce Lee", "Jackie Chan", "Jet Li", "Lucy Liu",
    "Sandra Oh", "John Cho", "Priyanka Chopra", "Aishwarya Rai", "Salman Khan", "Dev Patel",
    "Penelope Cruz", "Eva Mendes", "Eva Green", "Jennifer Garner", "Viola Davis", "Octavia Spencer",
    "Benedict Cumberbatch", "Martin Freeman", "Orlando Bloom", "Elijah Wood", "Sean Penn",
    "Roger Moore", "Florence Pugh", "Emily Blunt", "Emily Watson", "Helen Mirren", "Maggie Smith",
    "Emma Thompson", "Olivia Wilde", "Olivia Rodrigo", "Miranda Lambert", "Blake Shelton",
    "Blake Lively", "Carrie Underwood", "Dolly Parton", "Johnny Cash", "Willie Nelson",
    "Garth Brooks", "Faith Hill", "Tim McGraw", "Keith Urban", "Luke Bryan", "Kenny Chesney",
    "Brad Paisley", "Frank Ocean", "Sam Smith", "Niall Horan", "Louis Tomlinson", "Liam Payne",
    "Zayn Malik", "Nick Jonas", "Joe Jonas", "Kevin Jonas", "Demi Lovato", "Jason Bateman",
    "Seth Rogen", "Jonah Hill", "Michael Cera", "Sadie Sink", "Winona Ryder", "David Harbour",
    "Pedro Pascal", "Oscar Isaac", "Adam Driver", "Daisy Ridley", "Mark Hamill", "Carrie Fisher",
    "Peter Jackson", "Steven Spielberg", "James Cameron", "Christopher Nolan", "Quentin Tarantino",
    "Martin Scorsese", "Ridley Scott", "Tim Burton", "Wes Anderson", "Woody Allen",
    "Stanley Kubrick", "George Lucas", "Spike Lee", "Sofia Coppola", "Francis Coppola",
    "Nicolas Cage", "Andrew Garfield", "James Franco", "Dave Franco", "Alison Brie",
    "Anna Kendrick", "Chris Pine", "Nick Frost", "Karl Urban", "Michelle Rodriguez",
    "Michelle Williams", "Sarah Paulson", "Cynthia Nixon", "Matthew Perry", "Matt LeBlanc",
    "Jerry Seinfeld", "Larry David", "Jason Alexander", "Charlie Sheen", "Martin Sheen", "Rob Lowe",
    "Burt Reynolds", "Sally Field", "Kurt Russell", "Kate Hudson", "Oliver Hudson", "Diane Keaton",
    "Jane Fonda", "Henry Fonda", "Bridget Fonda", "Peter Fonda", "Shirley Temple", "Judy Garland",
    "Tina Turner", "Aretha Franklin", "Diana Ross", "Janet Jackson", "Lionel Richie", "Ray Charles",
    "James Brown", "Chuck Berry", "Little Richard", "Billy Joel", "Bruce Springsteen",
    "Steven Tyler", "Ozzy Osbourne", "Chris Martin", "Phil Collins", "Peter Gabriel", "Rod Stewart",
    "Tom Jones", "Neil Young", "Neil Diamond", "Paul Simon", "Simon Cowell", "Gordon Ramsay",
    "Jamie Oliver", "Anthony Bourdain", "Martha Stewart", "David Attenborough", "Stephen Hawking",
    "Albert Einstein", "Neil Armstrong", "Carl Sagan", "Bill Nye", "Kate Middleton",
    "Meghan Markle", "Vladimir Putin", "Angela Merkel", "Emmanuel Macron", "Justin Trudeau",
    "Boris Johnson", "Theresa May", "Tony Blair", "Margaret Thatcher", "Ronald Reagan",
    "Jimmy Carter", "Richard Nixon", "Kamala Harris", "Bernie Sanders", "Nancy Pelosi",
    "Mitt Romney", "John McCain", "Al Gore", "Sarah Palin", "Colin Powell", "Mike Pence",
    "Mahatma Gandhi", "Pablo Picasso", "Andy Warhol", "Salvador Dali", "Walt Disney", "Stan Lee",
    "Jack Ma", "Larry Page", "Tim Cook", "Jack Dorsey", "Richard Branson", "Mark Cuban",
    "Stephen King", "George Martin", "Dan Brown", "Jane Austen", "Mark Twain", "Ernest Hemingway",
    "William Shakespeare", "Charles Dickens", "Oscar Wilde", "Maya Angelou", "Toni Morrison",
    "Agatha Christie", "Jack London", "Ricky Gervais", "Bill Burr", "Kevin James", "Adam Levine",
    "Gwen Stefani", "Sheryl Crow", "Joni Mitchell", "Carole King", "Stevie Nicks", "Debbie Harry",
    "Joan Jett", "Patti Smith", "Julie Andrews", "Gene Kelly", "Ginger Rogers", "Cary Grant",
    "James Stewart", "Gregory Peck", "Marlon Brando", "Dustin Hoffman", "Bill Murray",
    "Chevy Chase", "John Candy", "Steve Martin", "Martin Short", "Robin Williams", "Billy Crystal",
    "Arnold Palmer", "Lewis Hamilton", "Michael Schumacher", "Max Verstappen", "Valentino Rossi",
    "Sidney Crosby", "Derek Jeter", "Babe Ruth", "Alex Rodriguez", "Naomi Osaka", "David Villa",
    "Gareth Bale", "Thierry Henry", "Frank Lampard", "Steven Gerrard", "John Terry",
    "Didier Drogba", "Paul Pogba", "Eden Hazard", "Jose Mourinho", "Pep Guardiola", "Alex Ferguson",
    "Jurgen Klopp", "Tony Hawk", "Shaun White", "Mia Hamm", "Alex Morgan", "Ronda Rousey",
    "Hulk Hogan", "John Cena", "Randy Orton", "Chris Paul", "James Harden", "Russell Westbrook",
    "Kyrie Irving", "Anthony Davis", "Tim Duncan", "Yao Ming", "Charles Barkley", "Drew Brees",
    "Joe Montana", "Jerry Rice", "Dan Marino", "Eli Manning", "Odell Beckham", "Cam Newton",
    "Russell Wilson", "Jaden Smith", "Willow Smith", "Missy Elliott", "Jill Scott", "Tracy Chapman",
    "Luke Perry", "Jennie Garth", "Tori Spelling", "Pamela Anderson", "Carmen Electra",
    "Ashley Graham", "Hailey Bieber", "Cindy Crawford",
)

#: The official code's list (``datasets_face/selected_celeb_names.txt``), 326 names in its order.
OFFICIAL_CELEBRITIES: tuple[str, ...] = (
    "Adam Savage", "Adam Scott", "Alan Alda", "Alan Hale", "Albert Brooks", "Alec Baldwin",
    "Alec Guinness", "Alice Cooper", "Alicia Alonso", "Amy Adams", "Amy Schumer",
    "Anderson Cooper", "Andrea Martin", "Andy Richter", "Angelina Jolie", "Ann Curry",
    "Ann Miller", "Anne Hathaway", "Anne Murray", "Aubrey Plaza", "Audrey Hepburn", "Aziz Ansari",
    "BD Wong", "Barbara Walters", "Ben Affleck", "Ben Kingsley", "Ben Miller", "Ben Schwartz",
    "Benedict Cumberbatch", "Bill Burr", "Bill Cosby", "Bill Irwin", "Bill Maher", "Bill Murray",
    "Bill Nye", "Billy Chow", "Billy Connolly", "Billy Crystal", "Billy Joel", "Billy Porter",
    "Billy Wilder", "Bob Hope", "Bob Marley", "Bonnie Hunt", "Brad Pitt", "Brandon Lee",
    "Brian Cox", "Brian Tee", "Britney Spears", "Bron James", "Bruce Springsteen", "Bruce Willis",
    "Bryan Cranston", "Buck Henry", "Burt Lancaster", "Burt Reynolds", "Cameron Diaz",
    "Carol Burnett", "Carol Channing", "Carol Kane", "Carrie Underwood", "Cary Grant",
    "Cate Blanchett", "Celia Cruz", "Celine Dion", "Charlie Sheen", "Cheryl Hines", "Chris Pratt",
    "Christina Hendricks", "Christopher Guest", "Cindy Williams", "Claire Danes", "Craig Ferguson",
    "Craig Robinson", "Cristiano Ronaldo", "Crystal Gayle", "Dan Harmon", "Dan Levy", "Dan Rather",
    "Dana Gould", "Daniel Radcliffe", "Danny Thomas", "Daryl Hall", "Dave Bautista",
    "Dave Matthews", "David Beckham", "David Bowie", "David Butler", "David Spade", "Dax Shepard",
    "Dean Martin", "Debra Messing", "Dennis Chan", "Dennis Franz", "Dennis Hopper", "Dennis Quaid",
    "Dev Patel", "Devon Aoki", "Diana Ross", "Diane Sawyer", "Dizzy Gillespie", "Donald Crisp",
    "Donald Glover", "Donna Reed", "Donnie Yen", "Doris Roberts", "Drew Barrymore", "Drew Carey",
    "Dudley Moore", "Dwayne Johnson", "Ed Sheeran", "Eddie Murphy", "Edgar Wright",
    "Edward Norton", "Elaine May", "Eleanor Powell", "Eli Roth", "Elizabeth Banks", "Ellen Pompeo",
    "Elon Musk", "Elton John", "Emma Thompson", "Eric Idle", "Ernie Reyes", "Floyd Mayweather",
    "Forest Whitaker", "Fred Savage", "Garry Marshall", "Gene Lockhart", "George Benson",
    "George Burns", "George Clooney", "George Lopez", "George Lucas", "George Marshall",
    "George Miller", "Gillian Murphy", "Ginger Rogers", "Gregory Hines", "Gregory Peck",
    "Halle Berry", "Harold Lloyd", "Harrison Ford", "Harry Carey", "Helen Mirren", "Helen Reddy",
    "Howard Stern", "Hugh Jackman", "Hugh Laurie", "Ira Glass", "Isabel Sanford", "Jack Conway",
    "Jack Nicholson", "Jackie Chan", "Jackie Mason", "James Burrows", "James Cameron",
    "James Franco", "James Patterson", "Jamie Foxx", "Jane Lynch", "Janet Jackson",
    "Jason Alexander", "Jason Bateman", "Jason Biggs", "Jason Nash", "Jay Leno", "Jay Pharoah",
    "Jeff Gordon", "Jennifer Aniston", "Jennifer Garner", "Jennifer Hudson", "Jennifer Lopez",
    "Jennifer Saunders", "Jenny Slate", "Jerome Robbins", "Jerry Lewis", "Jerry Seinfeld",
    "Jim Parsons", "Jodie Foster", "Joe Cornish", "John Cho", "John Legend", "John Ritter",
    "Johnny Depp", "Jon Hamm", "Joseph Gordon", "Josh Gad", "Julia Roberts", "Julie Bowen",
    "Julie Kent", "Julie Walters", "Justin Bieber", "Kanye West", "Katy Perry", "Kay Cannon",
    "Keanu Reeves", "Kelly Clarkson", "Kelly Hu", "Ken Dodd", "Ken Jeong", "Kenny Ortega",
    "Kerry Washington", "Kevin Dillon", "Kevin Hart", "Kevin James", "Kevin Kline", "Kevin Spacey",
    "Kiefer Sutherland", "Kim Coles", "Kim Kardashian", "Kobe Bryant", "Kristen Bell",
    "Kylie Jenner", "Lady Gaga", "Larry King", "LeBron James", "Lee Daniels", "Lena Dunham",
    "Leonardo DiCaprio", "Leslie Mann", "Leslie Nielsen", "Lillian Hurst", "Lilly Singh",
    "Lily Tomlin", "Lionel Messi", "Loretta Lynn", "Lucy Liu", "Mackenzie Crook", "Madeline Kahn",
    "Marcia Wallace", "Margaret Cho", "Mariah Carey", "Mark Wahlberg", "Martin Scorsese",
    "Mel Brooks", "Mel Gibson", "Michael Cera", "Michael Jackson", "Michael Jordan",
    "Michael Landon", "Michael Palin", "Mike Myers", "Molly Shannon", "Morgan Freeman",
    "Naomi Watts", "Natalie Morales", "Natalie Portman", "Nathan Fielder", "Nathan Lane",
    "Nick Park", "Nicolas Cage", "Nicole Kidman", "Norman Lear", "Patrick Stewart",
    "Paul McCartney", "Paul Rudd", "Paula Abdul", "Penny Marshall", "Pete Holmes", "Peter Jackson",
    "Phil McGraw", "Piers Morgan", "Quentin Tarantino", "Randy Jackson", "Randy Travis",
    "Ray Romano", "Rich Sommer", "Richard Attenborough", "Ricky Gervais", "Ridley Scott",
    "Rita Moreno", "Rob Lowe", "Robert Downey", "Robin Williams", "Roger Federer", "Roger Moore",
    "Ron Howard", "Rose Marie", "Russell Brand", "Ryan Murphy", "Ryan Reynolds", "Sally Field",
    "Sandra Bullock", "Sarah Shahi", "Seth Rogen", "Shirley Jones", "Sidney Franklin",
    "Simon Cowell", "Snoop Dogg", "Spike Lee", "Stan Lee", "Stephen Curry", "Stephen Fry",
    "Stephen King", "Stephen Merchant", "Steven Spielberg", "Sung Kang", "Susan Egan",
    "Taylor Swift", "Terrence Howard", "Terry Bradshaw", "Terry Jones", "Tim Conway",
    "Tim Robbins", "Tina Fey", "Tom Cruise", "Tom Hanks", "Tom Hiddleston", "Tom Jones",
    "Tommy Chong", "Tony Bennett", "Tracy Morgan", "Trey Parker", "Tyler Perry", "Valerie Harper",
    "Vanessa Bayer", "Vanessa Williams", "Viola Davis", "Walt Disney", "Wanda Sykes",
    "Wayne Brady", "Wendy Whelan", "Will Ferrell", "Will Smith", "Zachary Levi",
)

#: ``train.celebrity_names`` -> its list.
CELEBRITY_LISTS: dict[str, tuple[str, ...]] = {"official": OFFICIAL_CELEBRITIES, "extended": CELEBRITIES}


def celebrity_names(choice: str) -> tuple[str, ...]:
    """The list ``train.celebrity_names`` names (``official`` or ``extended``); ValueError otherwise."""
    try:
        return CELEBRITY_LISTS[choice]
    except KeyError:
        raise ValueError(f"celebrity_names must be one of {sorted(CELEBRITY_LISTS)}, got {choice!r}") from None

__all__ = ["CELEBRITIES", "OFFICIAL_CELEBRITIES", "CELEBRITY_LISTS", "celebrity_names"]
